// Runs the native CLI with invalid input and checks that each run fails cleanly: a non-zero
// exit code (not a crash), an error on stderr that names the offending value, and nothing on
// stdout. The CLI is build/native/spinquant, or the path in the SQ_CLI environment variable
// (absolute or relative to the repository root). Uses models/stories260K.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { repositoryRoot, run } from './helpers.mjs';

const cli = path.resolve(repositoryRoot, process.env.SQ_CLI ?? 'build/native/spinquant');
const modelPath = 'models/stories260K/stories260K.bin';
const tokenizerPath = 'models/stories260K/tok512.bin';
const model = [modelPath, '--tokenizer', tokenizerPath];

function findSkipReason() {
  if (!existsSync(cli)) {
    return `native CLI not found at ${cli}; build it (npm run build) or set SQ_CLI to its path`;
  }
  for (const file of [modelPath, tokenizerPath]) {
    if (!existsSync(path.join(repositoryRoot, file))) return `model file ${file} not found`;
  }
  return false;
}

const skip = findSkipReason();

// Exit codes of the CLI (src/cli/common.h): 1 a failure while running, 2 invalid usage.
const FAILURE = 1;
const USAGE = 2;

let scratch;

function scratchPath(name) {
  return path.join(scratch, name);
}

// Runs the CLI and checks the common contract of a failed run; returns stderr.
function expectFailure(args, { exitCode, mentions = [] }) {
  const result = run(cli, args, { timeout: 60_000 });
  assert.equal(result.signal, null, `the CLI was killed by ${result.signal}; stderr:\n${result.stderr}`);
  assert.notEqual(result.status, 0, `expected a failure, got exit code 0; stdout:\n${result.stdout}`);
  if (exitCode !== undefined) {
    assert.equal(result.status, exitCode, `exit code ${result.status}, expected ${exitCode}; stderr:\n${result.stderr}`);
  }
  assert.equal(result.stdout, '', 'a failed run must print nothing on stdout');
  assert.match(result.stderr, /spinquant: error: /, 'stderr must carry an error line');
  for (const text of mentions) {
    assert.ok(result.stderr.includes(text), `stderr does not mention ${JSON.stringify(text)}:\n${result.stderr}`);
  }
  return result.stderr;
}

// A rotation file with the layout of src/rotation/rotation_file.h and a valid CRC-32, for a
// model of other dimensions than stories260K (dim 64, head_dim 8, 5 layers).
function writeRotationFile(file, dim, headDim, nLayers) {
  const floats = dim * dim + nLayers * headDim * headDim;
  const bytes = Buffer.alloc(40 + 4 * floats + 4);
  Buffer.from('SQROT\0\0\x01', 'latin1').copy(bytes, 0);
  bytes.writeUInt32LE(1, 8);
  bytes.writeUInt32LE(dim, 12);
  bytes.writeUInt32LE(headDim, 16);
  bytes.writeUInt32LE(nLayers, 20);
  bytes.writeUInt32LE(1, 24);
  for (let i = 0; i < dim; i++) bytes.writeFloatLE(1, 40 + 4 * (i * dim + i));
  for (let l = 0; l < nLayers; l++) {
    for (let i = 0; i < headDim; i++) bytes.writeFloatLE(1, 40 + 4 * (dim * dim + l * headDim * headDim + i * headDim + i));
  }
  bytes.writeUInt32LE(zlib.crc32(bytes.subarray(0, bytes.length - 4)), bytes.length - 4);
  writeFileSync(file, bytes);
}

describe('CLI rejects invalid input', { skip }, () => {
  let validRotation;

  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sq-cli-errors-'));
    writeFileSync(scratchPath('empty.bin'), Buffer.alloc(0));
    // Fixed pseudo-random bytes, so a failure reproduces.
    const noise = Buffer.alloc(4096);
    let state = 12345;
    for (let i = 0; i < noise.length; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      noise[i] = state >>> 24;
    }
    writeFileSync(scratchPath('random.bin'), noise);
    mkdirSync(scratchPath('no-config'));
    writeFileSync(scratchPath('text.txt'), 'Once upon a time there was a little cat. '.repeat(200));
    writeFileSync(scratchPath('bad-utf8.txt'), Buffer.from([0x61, 0x62, 0x63, 0x20, 0xff, 0xfe, 0x20, 0x64]));

    // A valid rotation file for stories260K, then broken copies of it.
    validRotation = scratchPath('valid-rotation.bin');
    const rotateRun = run(cli, ['rotate', ...model, '--rotation', 'hadamard', '--seed', '3', '--out', validRotation]);
    assert.equal(rotateRun.status, 0, `rotate failed:\n${rotateRun.stderr}`);
    const bytes = readFileSync(validRotation);
    writeFileSync(scratchPath('truncated-rotation.bin'), bytes.subarray(0, 1000));
    const flipped = Buffer.from(bytes);
    flipped[200] ^= 0x01;
    writeFileSync(scratchPath('flipped-rotation.bin'), flipped);
    const magic = Buffer.from(bytes);
    magic[0] = 0x58;
    writeFileSync(scratchPath('bad-magic-rotation.bin'), magic);
    writeRotationFile(scratchPath('other-model-rotation.bin'), 32, 8, 5);
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe('model input', () => {
    test('missing model file is named', () => {
      const missing = scratchPath('no-such-model.bin');
      expectFailure(['info', missing], { exitCode: FAILURE, mentions: [missing] });
    });

    test('directory without config.json is named', () => {
      expectFailure(['info', scratchPath('no-config')], { exitCode: FAILURE, mentions: [scratchPath('no-config'), 'config.json'] });
    });

    test('empty model file is named', () => {
      expectFailure(['info', scratchPath('empty.bin'), '--tokenizer', tokenizerPath], { exitCode: FAILURE, mentions: [scratchPath('empty.bin')] });
    });

    test('random-bytes model file is named', () => {
      expectFailure(['info', scratchPath('random.bin'), '--tokenizer', tokenizerPath], { exitCode: FAILURE, mentions: [scratchPath('random.bin')] });
    });

    test('missing tokenizer file is named', () => {
      const missing = scratchPath('no-such-tokenizer.bin');
      expectFailure(['info', modelPath, '--tokenizer', missing], { mentions: [missing] });
    });
  });

  describe('command line', () => {
    test('unknown option is named', () => {
      expectFailure(['info', ...model, '--bogus-flag'], { exitCode: USAGE, mentions: ['--bogus-flag'] });
    });

    test('unknown command is named', () => {
      expectFailure(['frobnicate', ...model], { exitCode: USAGE, mentions: ['frobnicate'] });
    });

    test('option without its value', () => {
      expectFailure(['generate', ...model, '--max-tokens'], { exitCode: USAGE, mentions: ['--max-tokens'] });
    });

    test('malformed number is named', () => {
      expectFailure(['generate', ...model, '--max-tokens', '12abc'], { exitCode: USAGE, mentions: ['12abc', '--max-tokens'] });
    });

    test('eval --window 1', () => {
      expectFailure(['eval', ...model, '--text', scratchPath('text.txt'), '--window', '1'], { exitCode: USAGE, mentions: ['--window', "'1'"] });
    });

    test('eval --window beyond the context', () => {
      expectFailure(['eval', ...model, '--text', scratchPath('text.txt'), '--window', '1000'], { exitCode: USAGE, mentions: ['1000', '512'] });
    });

    test('generate --max-tokens 0', () => {
      expectFailure(['generate', ...model, '--max-tokens', '0'], { exitCode: USAGE, mentions: ['--max-tokens', "'0'"] });
    });

    test('generate --temperature -1', () => {
      expectFailure(['generate', ...model, '--temperature', '-1'], { exitCode: USAGE, mentions: ['--temperature', '-1'] });
    });

    test('generate --top-p 2', () => {
      expectFailure(['generate', ...model, '--top-p', '2'], { exitCode: USAGE, mentions: ['--top-p', "'2'"] });
    });

    test('generate --top-p 0', () => {
      expectFailure(['generate', ...model, '--top-p', '0'], { exitCode: USAGE, mentions: ['--top-p', "'0'"] });
    });
  });

  describe('quantization options', () => {
    const evalArgs = () => ['eval', ...model, '--text', scratchPath('text.txt'), '--max-windows', '1'];

    test('--w-bits 1', () => {
      expectFailure([...evalArgs(), '--w-bits', '1'], { exitCode: USAGE, mentions: ['--w-bits', '1'] });
    });

    test('--w-bits 17', () => {
      expectFailure([...evalArgs(), '--w-bits', '17'], { exitCode: USAGE, mentions: ['--w-bits', '17'] });
    });

    test('--w-group 7 does not divide the widths of stories260K', () => {
      expectFailure([...evalArgs(), '--w-bits', '4', '--w-group', '7'], { exitCode: USAGE, mentions: ['--w-group', '7'] });
    });

    test('calibrate --w-group -1', () => {
      const args = ['calibrate', ...model, '--text', scratchPath('text.txt'), '--out', scratchPath('g-1.rot'), '--w-bits', '4', '--w-group', '-1'];
      expectFailure(args, { exitCode: USAGE, mentions: ['--w-group', '-1'] });
      assert.equal(existsSync(scratchPath('g-1.rot')), false, 'a rejected calibrate run left its output file');
    });

    test('--gptq without --calib', () => {
      expectFailure([...evalArgs(), '--w-bits', '4', '--gptq'], { exitCode: USAGE, mentions: ['--gptq', '--calib'] });
    });

    test('--gptq with a calibration text too short', () => {
      writeFileSync(scratchPath('short-calib.txt'), 'Once upon a time.');
      expectFailure([...evalArgs(), '--w-bits', '4', '--gptq', '--calib', scratchPath('short-calib.txt')], { exitCode: USAGE, mentions: ['8192'] });
    });

    test('--mode with an unknown value', () => {
      expectFailure([...evalArgs(), '--rotation', 'hadamard', '--mode', 'sideways'], { exitCode: USAGE, mentions: ['sideways'] });
    });

    test('--rotation with a missing file', () => {
      const missing = scratchPath('no-such-rotation.bin');
      expectFailure([...evalArgs(), '--rotation', missing], { exitCode: FAILURE, mentions: [missing] });
    });

    test('--rotation with a truncated file', () => {
      expectFailure([...evalArgs(), '--rotation', scratchPath('truncated-rotation.bin')], { exitCode: FAILURE, mentions: ['truncated-rotation.bin'] });
    });

    test('--rotation with a flipped byte fails its checksum', () => {
      const stderr = expectFailure([...evalArgs(), '--rotation', scratchPath('flipped-rotation.bin')], { exitCode: FAILURE, mentions: ['flipped-rotation.bin'] });
      assert.match(stderr, /CRC|checksum|corrupt/i);
    });

    test('--rotation with a wrong magic', () => {
      expectFailure([...evalArgs(), '--rotation', scratchPath('bad-magic-rotation.bin')], { exitCode: FAILURE, mentions: ['bad-magic-rotation.bin'] });
    });

    test('--rotation made for another model', () => {
      // The file is for dim 32, and stories260K has dim 64.
      expectFailure([...evalArgs(), '--rotation', scratchPath('other-model-rotation.bin')], { exitCode: FAILURE, mentions: ['other-model-rotation.bin', '32', '64'] });
    });

    test('a valid rotation file is accepted', () => {
      const result = run(cli, [...evalArgs(), '--rotation', validRotation, '--json']);
      assert.equal(result.status, 0, result.stderr);
      assert.ok(Number.isFinite(JSON.parse(result.stdout).ppl));
    });
  });

  describe('text input', () => {
    test('eval without --text', () => {
      expectFailure(['eval', ...model], { exitCode: USAGE, mentions: ['--text'] });
    });

    test('eval with a missing --text file is named', () => {
      const missing = scratchPath('no-such-text.txt');
      expectFailure(['eval', ...model, '--text', missing], { exitCode: FAILURE, mentions: [missing] });
    });

    test('eval --text with a directory is named', () => {
      const stderr = expectFailure(['eval', ...model, '--text', scratch], { exitCode: FAILURE, mentions: [scratch] });
      assert.doesNotMatch(stderr, /allocate/, 'a directory must be reported as such, not as an allocation failure');
    });

    test('eval --text with invalid UTF-8 names the byte', () => {
      expectFailure(['eval', ...model, '--text', scratchPath('bad-utf8.txt')], { mentions: ['UTF-8', '4'] });
    });

    test('eval --text with invalid UTF-8 names the file', () => {
      expectFailure(['eval', ...model, '--text', scratchPath('bad-utf8.txt')], { mentions: ['bad-utf8.txt'] });
    });

    test('tokenize --text with invalid UTF-8 names the byte', () => {
      expectFailure(['tokenize', ...model, '--text', scratchPath('bad-utf8.txt')], { mentions: ['UTF-8', '4'] });
    });

    test('eval text shorter than one window', () => {
      writeFileSync(scratchPath('short.txt'), 'Once upon a time.');
      expectFailure(['eval', ...model, '--text', scratchPath('short.txt')], { exitCode: USAGE, mentions: ['512'] });
    });

    test('prompt longer than the context of 512 tokens', () => {
      const prompt = Array.from({ length: 600 }, () => 'cat').join(' ');
      expectFailure(['generate', ...model, '--prompt', prompt, '--max-tokens', '4'], { exitCode: USAGE, mentions: ['512'] });
    });
  });

  describe('rotate', () => {
    test('rotate without --out', () => {
      expectFailure(['rotate', ...model], { exitCode: USAGE, mentions: ['--out'] });
    });

    test('rotate with an unknown --rotation', () => {
      expectFailure(['rotate', ...model, '--rotation', 'spiral', '--out', scratchPath('unused.bin')], { exitCode: USAGE, mentions: ['spiral'] });
      assert.equal(existsSync(scratchPath('unused.bin')), false);
    });

    test('rotate into a missing directory writes nothing', () => {
      const target = scratchPath('missing-dir/rotation.bin');
      expectFailure(['rotate', ...model, '--out', target], { exitCode: FAILURE, mentions: ['missing-dir/rotation.bin'] });
      assert.equal(existsSync(scratchPath('missing-dir')), false);
    });

    test('rotate onto a directory keeps it and leaves no temporary file', () => {
      const target = scratchPath('existing-dir');
      mkdirSync(target);
      writeFileSync(path.join(target, 'keep.txt'), 'keep');
      expectFailure(['rotate', ...model, '--out', target], { exitCode: FAILURE, mentions: ['existing-dir'] });
      assert.ok(statSync(target).isDirectory());
      assert.equal(readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'keep');
      assert.equal(existsSync(`${target}.tmp`), false);
    });

    test('rotate with a broken model writes no file', () => {
      const target = scratchPath('from-broken-model.bin');
      expectFailure(['rotate', scratchPath('random.bin'), '--tokenizer', tokenizerPath, '--out', target], { exitCode: FAILURE });
      assert.equal(existsSync(target), false);
      assert.equal(existsSync(`${target}.tmp`), false);
    });

    test('a failed rotate leaves no temporary files in the output directory', () => {
      const leftovers = readdirSync(scratch).filter((name) => name.endsWith('.tmp'));
      assert.deepEqual(leftovers, []);
    });
  });
});
