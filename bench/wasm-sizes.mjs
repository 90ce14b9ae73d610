#!/usr/bin/env node
// Sizes of the WebAssembly outputs, printed as a Markdown table:
//   node bench/wasm-sizes.mjs [DIST_DIR]      (default: SQ_DIST_DIR or dist/)
// For each .wasm file it prints the size on disk and the bytes in custom sections (names, debug
// information, producers). Then come the size without them, which is what a strip tool leaves,
// and the gzip -9 and Brotli (quality 11) sizes of the file, which is what a server sends. The
// JavaScript glue (spinquant-VARIANT.mjs) is listed with its own compressed sizes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { distDir as defaultDistDir } from '../tests/js/fixtures/targets.mjs';

// Reads an unsigned LEB128 number at offset; returns [value, next offset].
function readUleb(bytes, offset) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[offset++];
    if (byte === undefined) throw new Error('truncated LEB128 number');
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, offset];
    shift += 7;
  }
}

// Returns the custom sections of a WebAssembly binary as [{ name, bytes }].
function customSections(bytes) {
  if (bytes.readUInt32LE(0) !== 0x6d736100) throw new Error('not a WebAssembly binary');
  const sections = [];
  let offset = 8;
  while (offset < bytes.length) {
    const id = bytes[offset];
    const [size, payload] = readUleb(bytes, offset + 1);
    const end = payload + size;
    if (id === 0) {
      const [nameLength, nameStart] = readUleb(bytes, payload);
      const name = bytes.subarray(nameStart, nameStart + nameLength).toString('utf8');
      sections.push({ name, bytes: end - offset });
    }
    offset = end;
  }
  return sections;
}

function compressedSizes(bytes) {
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }).length;
  return { gzip, brotli };
}

const distDir = path.resolve(process.argv[2] ?? defaultDistDir);
const files = readdirSync(distDir).filter((name) => /\.(wasm|mjs)$/.test(name)).sort();
const lines = [
  `Folder: ${path.relative(process.cwd(), distDir) || '.'}`,
  '',
  '| file | bytes | custom sections | bytes without them | gzip -9 | Brotli 11 |',
  '| --- | ---: | --- | ---: | ---: | ---: |',
];
for (const name of files) {
  const bytes = readFileSync(path.join(distDir, name));
  const { gzip, brotli } = compressedSizes(bytes);
  if (name.endsWith('.wasm')) {
    const custom = customSections(bytes);
    const customBytes = custom.reduce((sum, section) => sum + section.bytes, 0);
    const list = custom.length === 0 ? 'none' : custom.map((section) => `${section.name} (${section.bytes})`).join(', ');
    lines.push(`| ${name} | ${bytes.length} | ${list} | ${bytes.length - customBytes} | ${gzip} | ${brotli} |`);
  } else {
    lines.push(`| ${name} | ${bytes.length} | (JavaScript) | ${bytes.length} | ${gzip} | ${brotli} |`);
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
