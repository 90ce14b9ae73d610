// Loads each Emscripten variant that tools/build.sh produced (dist/spinquant-VARIANT.mjs) under
// Node.js and calls an export. The simd variant must exist. The pthread and relaxed variants are
// checked when built, and SQ_EMSCRIPTEN_VARIANTS selects which ones tools/build.sh builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { distPath, repositoryRoot, run } from './helpers.mjs';

const loader = path.join(repositoryRoot, 'tests/js/fixtures/load-emscripten.mjs');

// V8 before 11.4 (Node.js 20) compiles relaxed SIMD only behind this flag.
function relaxedSimdFlags() {
  const [major, minor] = process.versions.v8.split('.').map(Number);
  return major < 11 || (major === 11 && minor < 4) ? ['--experimental-wasm-relaxed-simd'] : [];
}

const variants = [
  { name: 'simd', required: true, nodeFlags: [] },
  { name: 'pthread', required: false, nodeFlags: [] },
  { name: 'relaxed', required: false, nodeFlags: relaxedSimdFlags() },
];

for (const variant of variants) {
  const modulePath = distPath(`spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && !variant.required ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} module loads in Node.js`, { skip }, () => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    const result = run(process.execPath, [...variant.nodeFlags, loader, distPath(''), variant.name], {
      timeout: 60_000,
    });
    assert.equal(result.status, 0, `loading ${modulePath} failed:\n${result.stderr}`);
    const { apiVersion } = JSON.parse(result.stdout);
    assert.ok(Number.isInteger(apiVersion), `sq_api_version() returned ${apiVersion}`);
    assert.ok(apiVersion >= 1, `sq_api_version() returned ${apiVersion}, expected at least 1`);
  });
}
