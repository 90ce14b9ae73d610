// A table of malformed inputs for every CLI command. Each case must fail cleanly: a non-zero
// exit code (not a signal), "spinquant: error:" on stderr with the offending value named, and
// nothing on stdout. The commands that write a file (rotate, quantize, calibrate) must leave
// neither the output file nor its temporary "<out>.tmp". tests/js/cli-errors.test.mjs covers
// the command-line options and a first set of files; this file adds corrupt model, tokenizer,
// rotation, .spq and text inputs. The CLI is build/native/spinquant, or the path in SQ_CLI
// (tests/js/sanitizers.test.mjs runs this file against the sanitizer build).
// Uses models/stories260K; every malformed file is generated here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { repositoryRoot, run } from './helpers.mjs';

const cli = path.resolve(repositoryRoot, process.env.SQ_CLI ?? 'build/native/spinquant');
const modelPath = 'models/stories260K/stories260K.bin';
const ggufPath = 'models/stories260K/stories260K.gguf';
const tokenizerPath = 'models/stories260K/tok512.bin';
const model = [modelPath, '--tokenizer', tokenizerPath];

function findSkipReason() {
  if (!existsSync(cli)) {
    return `native CLI not found at ${cli}; build it (npm run build) or set SQ_CLI to its path`;
  }
  for (const file of [modelPath, ggufPath, tokenizerPath]) {
    if (!existsSync(path.join(repositoryRoot, file))) return `model file ${file} not found`;
  }
  return false;
}

const skip = findSkipReason();

// Exit codes of the CLI (src/cli/common.h): 1 a failure while running, 2 invalid usage.
const FAILURE = 1;
const USAGE = 2;

let scratch;
const at = (name) => path.join(scratch, name);

// ---- file builders ----

// stories260K.bin's header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.
const STORIES_HEADER = [64, 172, 5, 8, 4, 512, 512];

// Minimal GGUF v3 writer: metadata entries [key, type, value] and F32 tensors [name, ne, floats].
const GGUF = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10 };

function ggufBytes(entries, tensors = [], { version = 3, tensorCount, kvCount } = {}) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  const value = (type, v) => {
    if (type === GGUF.UINT32) u32(v);
    else if (type === GGUF.INT32) { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); }
    else if (type === GGUF.FLOAT32) { const b = Buffer.alloc(4); b.writeFloatLE(v); parts.push(b); }
    else if (type === GGUF.BOOL) parts.push(Buffer.from([v ? 1 : 0]));
    else if (type === GGUF.STRING) str(v);
    else if (type === GGUF.UINT64) u64(v);
    else if (type === GGUF.ARRAY) { u32(v.type); u64(v.items.length); for (const item of v.items) value(v.type, item); }
  };
  parts.push(Buffer.from('GGUF'));
  u32(version);
  u64(tensorCount ?? tensors.length);
  u64(kvCount ?? entries.length);
  for (const [key, type, v] of entries) { str(key); u32(type); value(type, v); }
  let offset = 0;
  for (const [name, ne, floats] of tensors) {
    str(name); u32(ne.length); for (const n of ne) u64(n); u32(0); u64(offset);
    offset += Math.ceil((4 * floats.length) / 32) * 32;
  }
  let size = parts.reduce((n, b) => n + b.length, 0);
  parts.push(Buffer.alloc((32 - (size % 32)) % 32));
  for (const [, , floats] of tensors) {
    const b = Buffer.alloc(Math.ceil((4 * floats.length) / 32) * 32);
    floats.forEach((f, i) => b.writeFloatLE(f, 4 * i));
    parts.push(b);
  }
  return Buffer.concat(parts);
}

// The llama.* keys of a small model; override replaces or adds keys.
function llamaKeys(override = {}) {
  const keys = {
    'general.architecture': [GGUF.STRING, 'llama'],
    'llama.embedding_length': [GGUF.UINT32, 8],
    'llama.feed_forward_length': [GGUF.UINT32, 16],
    'llama.block_count': [GGUF.UINT32, 1],
    'llama.attention.head_count': [GGUF.UINT32, 2],
    'llama.attention.head_count_kv': [GGUF.UINT32, 1],
    'llama.context_length': [GGUF.UINT32, 32],
    'llama.vocab_size': [GGUF.UINT32, 512],
    ...override,
  };
  return Object.entries(keys).filter(([, v]) => v !== null).map(([key, [type, v]]) => [key, type, v]);
}

// Every tensor of the small model of llamaKeys(), filled with 0.01; nanAt = [name, index]
// puts a NaN into one of them.
function llamaTensors(nanAt) {
  const dim = 8, hidden = 16, vocab = 512, qDim = 8, kvDim = 4;
  const shapes = [
    ['token_embd.weight', [dim, vocab]], ['output_norm.weight', [dim]],
    ['blk.0.attn_norm.weight', [dim]], ['blk.0.attn_q.weight', [dim, qDim]], ['blk.0.attn_k.weight', [dim, kvDim]],
    ['blk.0.attn_v.weight', [dim, kvDim]], ['blk.0.attn_output.weight', [qDim, dim]], ['blk.0.ffn_norm.weight', [dim]],
    ['blk.0.ffn_gate.weight', [dim, hidden]], ['blk.0.ffn_up.weight', [dim, hidden]], ['blk.0.ffn_down.weight', [hidden, dim]],
  ];
  return shapes.map(([name, ne]) => {
    const floats = new Array(ne.reduce((a, b) => a * b, 1)).fill(0.01);
    if (nanAt && nanAt[0] === name) floats[nanAt[1]] = NaN;
    return [name, ne, floats];
  });
}

// A safetensors file: tensors [name, dtype, shape, byteLength] with zero data, or a raw header.
function safetensorsBytes(entries, { rawHeader } = {}) {
  let offset = 0;
  const header = {};
  for (const [name, dtype, shape, byteLength] of entries) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  const text = Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([size, text, Buffer.alloc(offset)]);
}

function hfConfig(override = {}) {
  return JSON.stringify({
    architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 512, max_position_embeddings: 32, ...override,
  });
}

function hfDir(name, config, weights) {
  const dir = at(name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), config);
  if (weights) writeFileSync(path.join(dir, 'model.safetensors'), weights);
  return dir;
}

// A llama2.c tokenizer.bin: entries [score, text].
function tokenizerBytes(maxLength, entries) {
  const parts = [Buffer.alloc(4)];
  parts[0].writeInt32LE(maxLength);
  for (const [score, text] of entries) {
    // A number in place of the text writes that length with no bytes after it.
    const body = typeof text === 'number' ? Buffer.alloc(0) : Buffer.from(text, 'utf8');
    const head = Buffer.alloc(8);
    head.writeFloatLE(score, 0);
    head.writeInt32LE(typeof text === 'number' ? text : body.length, 4);
    parts.push(head, body);
  }
  return Buffer.concat(parts);
}

// Rotation file (layout in src/rotation/rotation_file.h) with identity matrices; payloadFloats
// overrides the float count that follows the header, and the CRC-32 is always valid.
function rotationBytes({ dim = 64, headDim = 8, layers = 5, version = 1, mode = 0, payloadFloats } = {}) {
  const floats = payloadFloats ?? dim * dim + layers * headDim * headDim;
  const bytes = Buffer.alloc(40 + 4 * floats + 4);
  Buffer.from('SQROT\0\0\x01', 'latin1').copy(bytes, 0);
  bytes.writeUInt32LE(version, 8);
  bytes.writeUInt32LE(dim, 12);
  bytes.writeUInt32LE(headDim, 16);
  bytes.writeUInt32LE(layers, 20);
  bytes.writeUInt32LE(mode, 24);
  bytes.writeUInt32LE(zlib.crc32(bytes.subarray(0, bytes.length - 4)), bytes.length - 4);
  return bytes;
}

// Recomputes the CRC-32 fields of a .spq file (file header, then each section's payload and
// header CRC), so that a deliberate change is judged by the checks behind the checksums.
function fixSpqCrcs(bytes) {
  bytes.writeUInt32LE(zlib.crc32(bytes.subarray(0, 60)), 60);
  let offset = 64;
  while (bytes.length - offset >= 64) {
    const payloadSize = Number(bytes.readBigUInt64LE(offset + 16));
    const payloadAt = offset + 64;
    if (payloadSize > bytes.length - payloadAt) break;
    bytes.writeUInt32LE(zlib.crc32(bytes.subarray(payloadAt, payloadAt + payloadSize)), offset + 24);
    bytes.writeUInt32LE(zlib.crc32(bytes.subarray(offset, offset + 60)), offset + 60);
    offset = payloadAt + Math.ceil(payloadSize / 64) * 64;
  }
  return bytes;
}

// ---- the check ----

// Runs the CLI and checks the contract of a failed run; returns stderr. writes lists output
// paths that must not exist afterwards (nor their ".tmp" files). With shell, bash runs that
// script with $0 = the CLI and $1... = args. Node passes arguments as UTF-8, so a prompt with
// invalid UTF-8 bytes has to come from a file through "$(cat ...)".
function expectCleanFailure(args, { exitCode, mentions = [], writes = [], shell }) {
  const result = shell ? run('bash', ['-c', shell, cli, ...args], { timeout: 120_000 }) : run(cli, args, { timeout: 120_000 });
  assert.equal(result.signal, null, `the CLI was killed by ${result.signal}; stderr:\n${result.stderr}`);
  assert.notEqual(result.status, 0, `expected a failure, got exit code 0; stdout:\n${result.stdout}`);
  if (exitCode !== undefined) {
    assert.equal(result.status, exitCode, `exit code ${result.status}, expected ${exitCode}; stderr:\n${result.stderr}`);
  }
  assert.equal(result.stdout, '', 'a failed run must print nothing on stdout');
  assert.match(result.stderr, /spinquant: error: /, 'stderr must carry an error line');
  assert.doesNotMatch(result.stderr, /Sanitizer|runtime error:/, 'a sanitizer reported an error');
  for (const text of mentions) {
    assert.ok(result.stderr.includes(text), `stderr does not mention ${JSON.stringify(text)}:\n${result.stderr}`);
  }
  for (const file of writes) {
    assert.equal(existsSync(file), false, `a failed run left ${file}`);
    assert.equal(existsSync(`${file}.tmp`), false, `a failed run left ${file}.tmp`);
  }
  return result.stderr;
}

// ---- the table ----

// Each case: [name, () => ({ args, exitCode?, mentions, writes? })]. Files are written in
// before(), so the functions only name them.
const cases = [];
const add = (name, make) => cases.push([name, make]);

// llama2.c checkpoints.
add('llama2.c dim 0', () => ({ args: ['info', at('dim0.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['dim0.bin', 'dim = 0'] }));
add('llama2.c negative hidden_dim', () => ({ args: ['info', at('hidden-neg.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['hidden_dim = -172'] }));
add('llama2.c n_heads not dividing dim', () => ({ args: ['info', at('heads7.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['dim = 64', 'n_heads = 7'] }));
add('llama2.c n_kv_heads not dividing n_heads', () => ({ args: ['info', at('kv3.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['n_heads = 8', 'n_kv_heads = 3'] }));
add('llama2.c huge vocab_size', () => ({ args: ['info', at('huge-vocab.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['vocab_size 2147483647', 'expected'] }));
add('llama2.c truncated to half', () => ({ args: ['info', at('half.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['half.bin', '1056540', '528270'] }));
add('llama2.c trailing bytes', () => ({ args: ['info', at('trailing.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['trailing.bin', '1056540', '1056541'] }));
add('llama2.c NaN weight', () => ({ args: ['info', at('nan.bin'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['nan.bin', 'token_embedding', 'nan', 'index 100'] }));
add('llama2.c infinite weight in a layer', () => ({ args: ['generate', at('inf.bin'), '--tokenizer', tokenizerPath, '--max-tokens', '2'], exitCode: FAILURE, mentions: ['inf.bin', 'inf'] }));

// GGUF files.
add('GGUF version 1', () => ({ args: ['info', at('v1.gguf')], exitCode: FAILURE, mentions: ['v1.gguf', 'version 1'] }));
add('GGUF big-endian', () => ({ args: ['info', at('big-endian.gguf')], exitCode: FAILURE, mentions: ['big-endian'] }));
add('GGUF huge tensor count', () => ({ args: ['info', at('many-tensors.gguf')], exitCode: FAILURE, mentions: ['many-tensors.gguf', '1152921504606846976'] }));
add('GGUF huge string length', () => ({ args: ['info', at('long-string.gguf')], exitCode: FAILURE, mentions: ['long-string.gguf', '9223372036854775807'] }));
add('GGUF truncated stories260K', () => ({ args: ['info', at('truncated.gguf')], exitCode: FAILURE, mentions: ['truncated.gguf', 'truncated'] }));
add('GGUF architecture gpt2', () => ({ args: ['info', at('gpt2-arch.gguf')], exitCode: FAILURE, mentions: ["'gpt2'"] }));
add('GGUF head_count 0', () => ({ args: ['info', at('heads0.gguf')], exitCode: FAILURE, mentions: ['head_count = 0'] }));
add('GGUF head_count not dividing embedding_length', () => ({ args: ['info', at('heads3.gguf')], exitCode: FAILURE, mentions: ['embedding_length = 8', 'head_count = 3'] }));
add('GGUF huge vocab_size', () => ({ args: ['info', at('huge-vocab.gguf'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['huge-vocab.gguf', 'token_embd.weight', '2147483647'] }));
add('GGUF negative context_length', () => ({ args: ['info', at('context-neg.gguf')], exitCode: FAILURE, mentions: ['llama.context_length = -5'] }));
add('GGUF NaN weight', () => ({ args: ['info', at('nan.gguf'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['nan.gguf', 'nan', 'index 5'] }));
add('GGUF key_length making n_heads * head_dim overflow', () => ({ args: ['info', at('key-length.gguf'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['key-length.gguf', '2 * 1073741824'] }));
add('GGUF tensor with the wrong shape', () => ({ args: ['info', at('shape.gguf'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['blk.0.attn_q.weight', '[8, 8]'] }));

// Hugging Face directories.
add('config.json with a trailing comma', () => ({ args: ['info', at('hf-comma'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['config.json', 'line 1'] }));
add('config.json with a negative hidden_size', () => ({ args: ['info', at('hf-negative'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['config.json', 'hidden_size'] }));
add('config.json with heads not dividing hidden_size', () => ({ args: ['info', at('hf-heads'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['hidden_size = 8', 'num_attention_heads = 3'] }));
add('config.json head_dim making n_heads * head_dim overflow', () => ({ args: ['info', at('hf-head-dim'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['config.json', '2 * 1073741824'] }));
add('safetensors header size beyond the file', () => ({ args: ['info', at('hf-header-size'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['model.safetensors', '1099511627776'] }));
add('safetensors data_offsets outside the data', () => ({ args: ['info', at('hf-offsets'), '--tokenizer', tokenizerPath], exitCode: FAILURE, mentions: ['model.norm.weight', 'data_offsets'] }));

// Tokenizer files.
add('tokenizer.bin empty', () => ({ args: ['info', modelPath, '--tokenizer', at('tok-empty.bin')], exitCode: FAILURE, mentions: ['tok-empty.bin', '0 bytes'] }));
add('tokenizer.bin max_token_length 0', () => ({ args: ['info', modelPath, '--tokenizer', at('tok-max0.bin')], exitCode: FAILURE, mentions: ['tok-max0.bin', 'max_token_length 0'] }));
add('tokenizer.bin negative entry length', () => ({ args: ['info', modelPath, '--tokenizer', at('tok-negative.bin')], exitCode: FAILURE, mentions: ['tok-negative.bin', 'entry 1', '-7'] }));
add('tokenizer.bin entry length past the end', () => ({ args: ['info', modelPath, '--tokenizer', at('tok-long.bin')], exitCode: FAILURE, mentions: ['tok-long.bin', 'entry 0', '1000000'] }));
add('tokenizer.bin with too few entries', () => ({ args: ['info', modelPath, '--tokenizer', at('tok-short.bin')], exitCode: FAILURE, mentions: ['tok-short.bin', '3 entries', '512'] }));

// Text and prompts.
add('generate prompt with invalid UTF-8', () => ({ shell: 'exec "$0" generate "$1" --tokenizer "$2" --prompt "$(cat "$3")" --max-tokens 2', args: [modelPath, tokenizerPath, at('bad-prompt.txt')], mentions: ['UTF-8', 'byte offset 2', '0xC3'] }));
add('tokenize prompt with a lone continuation byte', () => ({ shell: 'exec "$0" tokenize "$1" --prompt "$(cat "$2")"', args: [ggufPath, at('continuation.txt')], mentions: ['UTF-8', 'byte offset 1', '0x80'] }));
add('tokenize text file with a truncated UTF-8 sequence', () => ({ args: ['tokenize', ...model, '--text', at('cut-utf8.txt')], mentions: ['cut-utf8.txt', 'UTF-8', '5'] }));
add('eval text that is empty', () => ({ args: ['eval', ...model, '--text', at('empty.txt')], mentions: ['512'] }));
// stories260K.gguf declares a context of 2048 tokens, and 'cat ' is two tokens.
add('GGUF model with a prompt longer than the context', () => ({ args: ['generate', ggufPath, '--prompt', 'cat '.repeat(1100), '--max-tokens', '2'], exitCode: USAGE, mentions: ['2048'] }));

// Bit widths out of range for the commands that write.
add('quantize --w-bits 5', () => ({ args: ['quantize', ...model, '--out', at('w5.spq'), '--w-bits', '5'], mentions: ['5'], writes: [at('w5.spq')] }));
add('quantize --a-bits 1', () => ({ args: ['quantize', ...model, '--out', at('a1.spq'), '--a-bits', '1'], mentions: ['--a-bits', '1'], writes: [at('a1.spq')] }));
add('quantize --kv-bits 17', () => ({ args: ['quantize', ...model, '--out', at('kv17.spq'), '--kv-bits', '17'], mentions: ['--kv-bits', '17'], writes: [at('kv17.spq')] }));
add('quantize --embed-bits 4', () => ({ args: ['quantize', ...model, '--out', at('e4.spq'), '--embed-bits', '4'], mentions: ['4'], writes: [at('e4.spq')] }));
add('calibrate --w-bits 0', () => ({ args: ['calibrate', ...model, '--text', at('calib.txt'), '--out', at('w0.rot'), '--w-bits', '0'], mentions: ['--w-bits', '0'], writes: [at('w0.rot')] }));
// stories260K's hidden_dim 172 is not a multiple of 8, so the run stops before it writes the log.
// With a million iterations these finish only if the output paths are checked before calibrating.
add('calibrate --out in a missing folder', () => ({ args: ['calibrate', ...model, '--text', at('calib.txt'), '--out', at('no-such-dir/out.rot'), '--iters', '1000000'], exitCode: FAILURE, mentions: ['no-such-dir', 'cannot create'] }));
add('calibrate --checkpoint in a missing folder', () => ({ args: ['calibrate', ...model, '--text', at('calib.txt'), '--out', at('ck.rot'), '--checkpoint', at('no-such-dir/c.ckpt'), '--iters', '1000000'], exitCode: FAILURE, mentions: ['no-such-dir', 'cannot create'], writes: [at('ck.rot')] }));
add('calibrate --scale-gradient 2', () => ({ args: ['calibrate', ...model, '--text', at('calib.txt'), '--out', at('sg2.rot'), '--scale-gradient', '2'], exitCode: USAGE, mentions: ['--scale-gradient', '2'], writes: [at('sg2.rot')] }));
add('calibrate --w-group 8', () => ({ args: ['calibrate', ...model, '--text', at('calib.txt'), '--out', at('g8.rot'), '--w-bits', '4', '--w-group', '8', '--log', at('g8.csv'), '--checkpoint', at('g8.ckpt')], exitCode: USAGE, mentions: ['--w-group 8', 'input width 172'], writes: [at('g8.rot'), at('g8.csv'), at('g8.ckpt')] }));

// Rotation files of the wrong size or header, and writes that must not leave a file.
add('rotation file one float short', () => ({ args: ['quantize', ...model, '--rotation', at('rot-short.bin'), '--out', at('rot-short.spq')], exitCode: FAILURE, mentions: ['rot-short.bin', 'expected'], writes: [at('rot-short.spq')] }));
add('rotation file one float long', () => ({ args: ['eval', ...model, '--text', at('text.txt'), '--max-windows', '1', '--rotation', at('rot-long.bin')], exitCode: FAILURE, mentions: ['rot-long.bin', 'expected'] }));
add('rotation file with dim 0', () => ({ args: ['eval', ...model, '--text', at('text.txt'), '--max-windows', '1', '--rotation', at('rot-dim0.bin')], exitCode: FAILURE, mentions: ['rot-dim0.bin', 'dim 0'] }));
add('rotation file with version 2', () => ({ args: ['eval', ...model, '--text', at('text.txt'), '--max-windows', '1', '--rotation', at('rot-v2.bin')], exitCode: FAILURE, mentions: ['rot-v2.bin', 'version 2'] }));
add('rotation file with mode 7', () => ({ args: ['eval', ...model, '--text', at('text.txt'), '--max-windows', '1', '--rotation', at('rot-mode7.bin')], exitCode: FAILURE, mentions: ['rot-mode7.bin', 'mode 7'] }));
add('rotate with a NaN model writes nothing', () => ({ args: ['rotate', at('nan.bin'), '--tokenizer', tokenizerPath, '--rotation', 'hadamard', '--seed', '1', '--out', at('nan.rot')], exitCode: FAILURE, mentions: ['nan.bin'], writes: [at('nan.rot')] }));
add('quantize with a truncated model writes nothing', () => ({ args: ['quantize', at('half.bin'), '--tokenizer', tokenizerPath, '--out', at('half.spq')], exitCode: FAILURE, mentions: ['half.bin'], writes: [at('half.spq')] }));
add('calibrate with invalid UTF-8 text writes nothing', () => ({ args: ['calibrate', ...model, '--text', at('cut-utf8.txt'), '--out', at('utf8.rot')], mentions: ['UTF-8'], writes: [at('utf8.rot')] }));

// .spq files, made from stories260K by quantize in before().
add('info on a .spq file', () => ({ args: ['info', at('valid.spq')], exitCode: FAILURE, mentions: ['valid.spq', '.spq file', 'generate, eval and bench'] }));
add('tokenize on a .spq file', () => ({ args: ['tokenize', at('valid.spq'), '--prompt', 'hi'], exitCode: FAILURE, mentions: ['valid.spq', '.spq file'] }));
add('.spq truncated inside a layer', () => ({ args: ['eval', at('truncated.spq'), '--text', at('text.txt'), '--max-windows', '1'], exitCode: FAILURE, mentions: ['truncated.spq', 'truncated'] }));
add('.spq with a flipped payload byte', () => ({ args: ['eval', at('flipped.spq'), '--text', at('text.txt'), '--max-windows', '1'], exitCode: FAILURE, mentions: ['flipped.spq', 'CRC-32'] }));
add('.spq format version 2', () => ({ args: ['bench', at('v2.spq')], exitCode: FAILURE, mentions: ['v2.spq', 'version 2'] }));
add('.spq header declaring 5000 sections', () => ({ args: ['bench', at('sections.spq')], exitCode: FAILURE, mentions: ['sections.spq', '5000 sections'] }));

describe('CLI rejects malformed input files cleanly', { skip }, () => {
  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sq-bad-input-'));
    const stories = readFileSync(path.join(repositoryRoot, modelPath));
    const withHeader = (values) => {
      const bytes = Buffer.from(stories);
      values.forEach((value, i) => bytes.writeInt32LE(value, 4 * i));
      return bytes;
    };

    // llama2.c.
    writeFileSync(at('dim0.bin'), withHeader([0, ...STORIES_HEADER.slice(1)]));
    writeFileSync(at('hidden-neg.bin'), withHeader([64, -172, ...STORIES_HEADER.slice(2)]));
    writeFileSync(at('heads7.bin'), withHeader([64, 172, 5, 7, 7, 512, 512]));
    writeFileSync(at('kv3.bin'), withHeader([64, 172, 5, 8, 3, 512, 512]));
    writeFileSync(at('huge-vocab.bin'), withHeader([64, 172, 5, 8, 4, 2147483647, 512]));
    writeFileSync(at('half.bin'), stories.subarray(0, stories.length / 2));
    writeFileSync(at('trailing.bin'), Buffer.concat([stories, Buffer.from([0])]));
    const nan = Buffer.from(stories);
    nan.writeFloatLE(NaN, 28 + 4 * 100);
    writeFileSync(at('nan.bin'), nan);
    const inf = Buffer.from(stories);
    inf.writeFloatLE(Infinity, 28 + 4 * (512 * 64 + 5 * 64 + 10)); // wq of layer 0
    writeFileSync(at('inf.bin'), inf);

    // GGUF.
    writeFileSync(at('v1.gguf'), ggufBytes(llamaKeys(), [], { version: 1 }));
    const bigEndian = ggufBytes(llamaKeys());
    bigEndian.writeUInt32BE(3, 4);
    writeFileSync(at('big-endian.gguf'), bigEndian);
    writeFileSync(at('many-tensors.gguf'), ggufBytes(llamaKeys(), [], { tensorCount: 2n ** 60n }));
    const longString = ggufBytes(llamaKeys());
    longString.writeBigUInt64LE(2n ** 63n - 1n, 24); // length of the first key
    writeFileSync(at('long-string.gguf'), longString);
    const storiesGguf = readFileSync(path.join(repositoryRoot, ggufPath));
    writeFileSync(at('truncated.gguf'), storiesGguf.subarray(0, 600_000));
    writeFileSync(at('gpt2-arch.gguf'), ggufBytes(llamaKeys({ 'general.architecture': [GGUF.STRING, 'gpt2'] })));
    writeFileSync(at('heads0.gguf'), ggufBytes(llamaKeys({ 'llama.attention.head_count': [GGUF.UINT32, 0] })));
    writeFileSync(at('heads3.gguf'), ggufBytes(llamaKeys({ 'llama.attention.head_count': [GGUF.UINT32, 3], 'llama.attention.head_count_kv': [GGUF.UINT32, 3] })));
    writeFileSync(at('huge-vocab.gguf'), ggufBytes(llamaKeys({ 'llama.vocab_size': [GGUF.UINT32, 2147483647] }), llamaTensors()));
    writeFileSync(at('context-neg.gguf'), ggufBytes(llamaKeys({ 'llama.context_length': [GGUF.INT32, -5] })));
    writeFileSync(at('nan.gguf'), ggufBytes(llamaKeys(), llamaTensors(['blk.0.attn_k.weight', 5])));
    writeFileSync(at('key-length.gguf'), ggufBytes(llamaKeys({ 'llama.attention.key_length': [GGUF.UINT32, 2 ** 30] }), llamaTensors()));
    const badShape = llamaTensors();
    badShape[3] = ['blk.0.attn_q.weight', [8, 4], new Array(32).fill(0.01)];
    writeFileSync(at('shape.gguf'), ggufBytes(llamaKeys(), badShape));

    // Hugging Face.
    const norm = [['model.norm.weight', 'F32', [8], 32]];
    hfDir('hf-comma', hfConfig().replace('}', ',}'), safetensorsBytes(norm));
    hfDir('hf-negative', hfConfig({ hidden_size: -8 }), safetensorsBytes(norm));
    hfDir('hf-heads', hfConfig({ num_attention_heads: 3, num_key_value_heads: 3 }), safetensorsBytes(norm));
    hfDir('hf-head-dim', hfConfig({ head_dim: 2 ** 30 }), safetensorsBytes(norm));
    const headerSize = safetensorsBytes(norm);
    headerSize.writeBigUInt64LE(2n ** 40n, 0);
    hfDir('hf-header-size', hfConfig(), headerSize);
    const offsets = JSON.stringify({ 'model.norm.weight': { dtype: 'F32', shape: [8], data_offsets: [0, 4096] } });
    hfDir('hf-offsets', hfConfig(), safetensorsBytes([], { rawHeader: offsets }));

    // Tokenizers.
    writeFileSync(at('tok-empty.bin'), Buffer.alloc(0));
    writeFileSync(at('tok-max0.bin'), tokenizerBytes(0, [[0, '<unk>']]));
    writeFileSync(at('tok-negative.bin'), tokenizerBytes(16, [[0, '<unk>'], [0, -7]]));
    writeFileSync(at('tok-long.bin'), tokenizerBytes(16, [[0, 1000000]]));
    writeFileSync(at('tok-short.bin'), tokenizerBytes(16, [[0, '<unk>'], [0, '<s>'], [0, '</s>']]));

    // Texts.
    writeFileSync(at('bad-prompt.txt'), Buffer.from([0x68, 0x69, 0xc3, 0x28]));
    writeFileSync(at('continuation.txt'), Buffer.from([0x61, 0x80, 0x62]));
    writeFileSync(at('cut-utf8.txt'), Buffer.from([0x61, 0x62, 0x63, 0x20, 0x64, 0xe2, 0x9c]));
    writeFileSync(at('empty.txt'), '');
    writeFileSync(at('text.txt'), 'Once upon a time there was a little cat. '.repeat(200));
    writeFileSync(at('calib.txt'), 'Once upon a time there was a little cat. '.repeat(2000));

    // Rotation files for stories260K (dim 64, head_dim 8, 5 layers).
    writeFileSync(at('rot-short.bin'), rotationBytes({ payloadFloats: 64 * 64 + 5 * 64 - 1 }));
    writeFileSync(at('rot-long.bin'), rotationBytes({ payloadFloats: 64 * 64 + 5 * 64 + 1 }));
    writeFileSync(at('rot-dim0.bin'), rotationBytes({ dim: 0, payloadFloats: 5 * 64 }));
    writeFileSync(at('rot-v2.bin'), rotationBytes({ version: 2 }));
    writeFileSync(at('rot-mode7.bin'), rotationBytes({ mode: 7 }));

    // .spq files from a valid quantization of stories260K.
    const spq = at('valid.spq');
    const quantize = run(cli, ['quantize', ...model, '--out', spq], { timeout: 300_000 });
    assert.equal(quantize.status, 0, `quantize failed:\n${quantize.stderr}`);
    const spqBytes = readFileSync(spq);
    writeFileSync(at('truncated.spq'), spqBytes.subarray(0, Math.floor(spqBytes.length * 0.6)));
    const flipped = Buffer.from(spqBytes);
    flipped[flipped.length - 200] ^= 0x10;
    writeFileSync(at('flipped.spq'), flipped);
    const v2 = Buffer.from(spqBytes);
    v2.writeUInt32LE(2, 8);
    writeFileSync(at('v2.spq'), fixSpqCrcs(v2));
    const sections = Buffer.from(spqBytes);
    sections.writeUInt32LE(5000, 20);
    writeFileSync(at('sections.spq'), fixSpqCrcs(sections));
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  for (const [name, make] of cases) {
    test(name, () => {
      const { args, ...expected } = make();
      expectCleanFailure(args, expected);
    });
  }

  test('no failed run left a temporary file', () => {
    const leftovers = readdirSync(scratch).filter((name) => name.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });
});
