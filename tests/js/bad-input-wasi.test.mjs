// Memory limits of the 32-bit WebAssembly build, for the WASI CLI (dist/spinquant.wasm, or the
// module named by SQ_WASI_MODULE). It must reject a model that cannot fit in its 4 GiB address
// space with a clear error. It must also read a tensor, a .spq file or a tokenizer file of more
// than 128 MiB, which the wasmtime runtime (version 51) refuses in a single read.
// The GGUF files are sparse: their headers declare large Q4_0 tensors whose data is a hole
// of zeros, so the tests need little disk space. Runs under both WASI runners of helpers.mjs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distPath, repositoryRoot, run, wasiRunners } from './helpers.mjs';

const wasm = process.env.SQ_WASI_MODULE ? path.resolve(repositoryRoot, process.env.SQ_WASI_MODULE) : distPath('spinquant.wasm');
const tokenizerPath = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const modelPath = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');

function findSkipReason() {
  if (!existsSync(wasm)) return `${wasm} not found; build it with npm run build`;
  for (const file of [tokenizerPath, modelPath]) {
    if (!existsSync(file)) return `${file} not found`;
  }
  return false;
}

const skip = findSkipReason();

// Writes a GGUF v3 header for a one-layer llama model with F32 norms and Q4_0 matrices, then
// extends the file to its full size without writing the tensor data. Returns the file size.
function writeSparseGguf(file, { dim, hidden, heads, kvHeads, vocab, tied }) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)); };

  const keys = [
    ['general.architecture', 'llama'], ['llama.embedding_length', dim], ['llama.feed_forward_length', hidden],
    ['llama.block_count', 1], ['llama.attention.head_count', heads], ['llama.attention.head_count_kv', kvHeads],
    ['llama.context_length', 64], ['llama.vocab_size', vocab],
  ];
  const headDim = dim / heads;
  const tensors = [['token_embd.weight', [dim, vocab]], ['output_norm.weight', [dim]]];
  if (!tied) tensors.push(['output.weight', [dim, vocab]]);
  tensors.push(
    ['blk.0.attn_norm.weight', [dim]], ['blk.0.attn_q.weight', [dim, heads * headDim]],
    ['blk.0.attn_k.weight', [dim, kvHeads * headDim]], ['blk.0.attn_v.weight', [dim, kvHeads * headDim]],
    ['blk.0.attn_output.weight', [heads * headDim, dim]], ['blk.0.ffn_norm.weight', [dim]],
    ['blk.0.ffn_gate.weight', [dim, hidden]], ['blk.0.ffn_up.weight', [dim, hidden]], ['blk.0.ffn_down.weight', [hidden, dim]],
  );

  parts.push(Buffer.from('GGUF'));
  u32(3);
  u64(tensors.length);
  u64(keys.length);
  for (const [key, value] of keys) {
    str(key);
    if (typeof value === 'string') { u32(8); str(value); } else { u32(4); u32(value); }
  }
  let offset = 0n;
  for (const [name, ne] of tensors) {
    const count = ne.reduce((a, b) => a * BigInt(b), 1n);
    const type = ne.length === 1 ? 0 : 2; // F32 or Q4_0 (18 bytes per 32 values)
    str(name); u32(ne.length); for (const n of ne) u64(n); u32(type); u64(offset);
    const bytes = type === 0 ? 4n * count : (count / 32n) * 18n;
    offset += ((bytes + 31n) / 32n) * 32n;
  }

  const headerSize = parts.reduce((n, b) => n + b.length, 0);
  parts.push(Buffer.alloc((32 - (headerSize % 32)) % 32));
  const header = Buffer.concat(parts);
  const fd = openSync(file, 'w');
  writeSync(fd, header);
  ftruncateSync(fd, Number(BigInt(header.length) + offset));
  closeSync(fd);
}

let scratch;

describe('WASI build memory limits', { skip }, () => {
  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sq-wasi-limits-'));
    copyFileSync(tokenizerPath, path.join(scratch, 'tok512.bin'));
    // vocab_size 2^31 - 1: the embedding alone has 2^36 values (a 38 GB sparse file).
    writeSparseGguf(path.join(scratch, 'huge-vocab.gguf'), { dim: 32, hidden: 64, heads: 4, kvHeads: 4, vocab: 2147483647, tied: true });
    // Embedding and classifier of 2 GiB each in fp32: more than 4 GiB in total.
    writeSparseGguf(path.join(scratch, 'over-4gib.gguf'), { dim: 16384, hidden: 32, heads: 128, kvHeads: 1, vocab: 32768, tied: false });
    // One Q4_0 tensor of 151 MB (1 GiB in fp32): fits, and its read must succeed.
    writeSparseGguf(path.join(scratch, 'large-read.gguf'), { dim: 8192, hidden: 32, heads: 64, kvHeads: 1, vocab: 32768, tied: true });
    // A 200 MB file with the .spq magic and zeros after it, which the .spq reader reads whole.
    const spq = openSync(path.join(scratch, 'large.spq'), 'w');
    writeSync(spq, Buffer.from('SPQM\r\n\x1a\n', 'latin1'));
    ftruncateSync(spq, 200 * 1024 * 1024);
    closeSync(spq);
    // A 136 MiB tokenizer file of zeros, which the tokenizer loader reads whole (sq_io_read_file).
    copyFileSync(modelPath, path.join(scratch, 'stories260K.bin'));
    const tokenizer = openSync(path.join(scratch, 'large-tokenizer.bin'), 'w');
    ftruncateSync(tokenizer, 136 * 1024 * 1024);
    closeSync(tokenizer);
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  for (const runner of wasiRunners) {
    // Runs `spinquant info FILE --tokenizer tok512.bin` under the runner; the scratch folder is
    // preopened as /work.
    const info = (name) => run(runner.command, [...runner.prefix, '--dir', `${scratch}::/work`, wasm, 'info', `/work/${name}`, '--tokenizer', '/work/tok512.bin'], { timeout: 300_000 });

    describe(runner.name, () => {
      test('a vocabulary of 2^31 - 1 tokens is a clean error', (t) => {
        const result = info('huge-vocab.gguf');
        if (/No module named|Cannot find module/.test(result.stderr)) return t.skip(`${runner.name} is not installed`);
        assert.equal(result.status, 1, `exit code ${result.status}; stderr:\n${result.stderr}`);
        assert.equal(result.stdout, '');
        assert.match(result.stderr, /spinquant: error: /);
        assert.match(result.stderr, /vocab_size 2147483647/);
        assert.match(result.stderr, /4 GiB address space/);
      });

      test('weights over 4 GiB are a clean error naming the size', (t) => {
        const result = info('over-4gib.gguf');
        if (/No module named|Cannot find module/.test(result.stderr)) return t.skip(`${runner.name} is not installed`);
        assert.equal(result.status, 1, `exit code ${result.status}; stderr:\n${result.stderr}`);
        assert.equal(result.stdout, '');
        assert.match(result.stderr, /need 6\.\d\d GiB, more than the 4 GiB address space/);
      });

      // NOTE: Node 20's node:wasi (seen with v20.20.2) often dies with SIGSEGV while the process
      // exits after a guest has grown its memory past about 64 MiB, even when the guest only
      // fills a buffer. The guest's output and exit status are correct up to then. The two
      // large-read cases need more memory than that, so they run under wasmtime only.
      const crashesAtExit = runner.name === 'node:wasi';
      test('a tensor of 151 MB is read in full', { skip: crashesAtExit && 'node:wasi crashes at exit after large guest memory' }, (t) => {
        const result = info('large-read.gguf');
        if (/No module named|Cannot find module/.test(result.stderr)) return t.skip(`${runner.name} is not installed`);
        // The weights load; the run then stops at the 512-token tokenizer given for a
        // 32768-token model, which shows that every tensor was read.
        assert.doesNotMatch(result.stderr, /read error/);
        assert.match(result.stderr, /vocab_size 32768/);
        assert.equal(result.status, 1, `exit code ${result.status}; stderr:\n${result.stderr}`);
      });

      test('a .spq file of 200 MB is read in full', { skip: crashesAtExit && 'node:wasi crashes at exit after large guest memory' }, () => {
        const result = run(runner.command, [...runner.prefix, '--dir', `${scratch}::/work`, wasm, 'bench', '/work/large.spq'], { timeout: 300_000 });
        // The whole file arrives, so the reader gets to check the header's CRC-32, which is zero.
        assert.doesNotMatch(result.stderr, /cannot read/);
        assert.match(result.stderr, /large\.spq.*CRC-32/);
        assert.equal(result.status, 1, `exit code ${result.status}; stderr:\n${result.stderr}`);
      });

      test('a tokenizer file of 136 MiB is read in full', { skip: crashesAtExit && 'node:wasi crashes at exit after large guest memory' }, () => {
        const result = run(runner.command, [...runner.prefix, '--dir', `${scratch}::/work`, wasm, 'info', '/work/stories260K.bin', '--tokenizer', '/work/large-tokenizer.bin'], { timeout: 300_000 });
        // The whole file arrives, so the loader gets to parse its first field, which is zero.
        assert.doesNotMatch(result.stderr, /read error/);
        assert.match(result.stderr, /large-tokenizer\.bin' has max_token_length 0/);
        assert.equal(result.status, 1, `exit code ${result.status}; stderr:\n${result.stderr}`);
      });
    });
  }
});
