// Replays the inputs under tests/regressions/<harness>/ (inputs that once crashed or misbehaved,
// kept in the input format of the fuzz harness tests/fuzz/fuzz_<harness>.c) through the CLI:
// each must fail with a clean error. When the fuzz harnesses are built (build-fuzz/, made by
// npm run fuzz), each input is also replayed through its harness under ASan and UBSan.
// The CLI is build/native/spinquant, or the path in SQ_CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { repositoryRoot, run } from './helpers.mjs';

const cli = path.resolve(repositoryRoot, process.env.SQ_CLI ?? 'build/native/spinquant');
const regressionsDir = path.join(repositoryRoot, 'tests/regressions');
const fuzzBuildDir = path.join(repositoryRoot, 'build-fuzz');
const modelPath = 'models/stories260K/stories260K.bin';
const tokenizerPath = 'models/stories260K/tok512.bin';

function findSkipReason() {
  if (!existsSync(cli)) return `native CLI not found at ${cli}; build it (npm run build) or set SQ_CLI to its path`;
  for (const file of [modelPath, tokenizerPath]) {
    if (!existsSync(path.join(repositoryRoot, file))) return `model file ${file} not found`;
  }
  return false;
}

const skip = findSkipReason();

let scratch;

// Splits the packed input of fuzz_hf.c into an HF directory and returns its path.
function unpackHf(bytes, name) {
  let offset = 0;
  const take = () => {
    const declared = bytes.length - offset >= 4 ? bytes.readUInt32LE(offset) : 0;
    offset = Math.min(offset + 4, bytes.length);
    const part = bytes.subarray(offset, offset + Math.min(declared, bytes.length - offset));
    offset += part.length;
    return part;
  };
  const config = take();
  const index = take();
  const dir = path.join(scratch, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), config);
  if (index.length === 0) {
    writeFileSync(path.join(dir, 'model.safetensors'), bytes.subarray(offset));
  } else {
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), index);
    writeFileSync(path.join(dir, 'shard.safetensors'), bytes.subarray(offset));
  }
  return dir;
}

// Recomputes the trailing CRC-32 of a rotation file, as fuzz_rotation.c does.
function fixRotationCrc(bytes) {
  const copy = Buffer.from(bytes);
  if (copy.length >= 4) copy.writeUInt32LE(zlib.crc32(copy.subarray(0, copy.length - 4)), copy.length - 4);
  return copy;
}

// Recomputes the CRC-32 fields of a .spq file, as fuzz_spq.c does.
function fixSpqCrcs(bytes) {
  const copy = Buffer.from(bytes);
  if (copy.length < 64) return copy;
  copy.writeUInt32LE(zlib.crc32(copy.subarray(0, 60)), 60);
  let offset = 64;
  while (copy.length - offset >= 64) {
    const payloadSize = copy.readBigUInt64LE(offset + 16);
    const payloadAt = offset + 64;
    const fits = payloadSize <= BigInt(copy.length - payloadAt);
    if (fits) copy.writeUInt32LE(zlib.crc32(copy.subarray(payloadAt, payloadAt + Number(payloadSize))), offset + 24);
    copy.writeUInt32LE(zlib.crc32(copy.subarray(offset, offset + 60)), offset + 60);
    if (!fits) break;
    const padded = Math.ceil(Number(payloadSize) / 64) * 64;
    if (padded > copy.length - payloadAt) break;
    offset = payloadAt + padded;
  }
  return copy;
}

// Returns the CLI arguments that feed one regression input to the parser its harness tests,
// writing converted files into the scratch folder where needed.
function cliArgs(harness, file) {
  const bytes = readFileSync(file);
  const base = `${harness}-${path.basename(file)}`;
  const write = (name, data) => {
    const target = path.join(scratch, name);
    writeFileSync(target, data);
    return target;
  };
  switch (harness) {
    case 'llama2c': return ['info', file, '--tokenizer', tokenizerPath];
    case 'gguf': return ['info', file];
    case 'hf': return ['info', unpackHf(bytes, base), '--tokenizer', tokenizerPath];
    case 'tokenizer_bin': return ['info', modelPath, '--tokenizer', file];
    case 'rotation': return ['eval', modelPath, '--tokenizer', tokenizerPath, '--text', path.join(scratch, 'text.txt'), '--max-windows', '1', '--rotation', write(base, fixRotationCrc(bytes))];
    case 'spq': return ['eval', write(`${base}.spq`, fixSpqCrcs(bytes)), '--text', path.join(scratch, 'text.txt'), '--max-windows', '1'];
    case 'spm_encode': return ['tokenize', modelPath, '--tokenizer', tokenizerPath, '--text', file];
    default: return null;
  }
}

function listInputs() {
  if (!existsSync(regressionsDir)) return [];
  const inputs = [];
  for (const harness of readdirSync(regressionsDir).sort()) {
    const dir = path.join(regressionsDir, harness);
    for (const name of readdirSync(dir).sort()) inputs.push({ harness, file: path.join(dir, name) });
  }
  return inputs;
}

const inputs = listInputs();

describe('regression inputs fail cleanly', { skip }, () => {
  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sq-regressions-'));
    writeFileSync(path.join(scratch, 'text.txt'), 'Once upon a time there was a little cat. '.repeat(200));
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('the regression folder holds inputs', () => {
    assert.ok(inputs.length > 0, `no inputs under ${regressionsDir}`);
  });

  for (const { harness, file } of inputs) {
    const label = `${harness}/${path.basename(file)}`;

    test(`${label} through the CLI`, (t) => {
      const args = cliArgs(harness, file);
      if (args === null) return t.skip(`the CLI has no input path for the ${harness} harness`);
      const result = run(cli, args, { timeout: 120_000 });
      assert.equal(result.signal, null, `the CLI was killed by ${result.signal}; stderr:\n${result.stderr}`);
      if (harness === 'spm_encode') {
        // Text inputs are valid or invalid UTF-8; either way the run must end normally.
        assert.ok(result.status === 0 || /spinquant: error: /.test(result.stderr), result.stderr);
        return;
      }
      assert.notEqual(result.status, 0, `expected a failure, got exit code 0; stdout:\n${result.stdout}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /spinquant: error: /);
      assert.doesNotMatch(result.stderr, /Sanitizer|runtime error:/);
    });

    const harnessBinary = path.join(fuzzBuildDir, `fuzz_${harness}`);
    test(`${label} through fuzz_${harness}`, { skip: !existsSync(harnessBinary) && 'the fuzz harnesses are not built (npm run fuzz)' }, () => {
      // The same memory limits as tests/fuzz/run.sh: an allocation above 1 GiB is a failure.
      const result = run(harnessBinary, ['-rss_limit_mb=2048', '-malloc_limit_mb=1024', file], { timeout: 120_000 });
      assert.equal(result.status, 0, `fuzz_${harness} failed on ${file}:\n${result.stderr}`);
    });
  }
});
