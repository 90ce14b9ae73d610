// Loads each Emscripten variant that tools/build.sh produced (dist/spinquant-VARIANT.mjs) under
// Node.js and calls an export. The simd variant must exist. The pthread and relaxed variants are
// checked when built, and SQ_EMSCRIPTEN_VARIANTS selects which ones tools/build.sh builds.
// The Node.js flags of each variant (relaxed: --no-liftoff) come from tests/js/fixtures/targets.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { run } from './helpers.mjs';
import { distDir, emscriptenVariants, repositoryRoot } from './fixtures/targets.mjs';

const loader = path.join(repositoryRoot, 'tests/js/fixtures/load-emscripten.mjs');

for (const variant of emscriptenVariants) {
  const modulePath = path.join(distDir, `spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && variant.name !== 'simd' ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} module loads in Node.js`, { skip }, () => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    const result = run(process.execPath, [...variant.nodeFlags, loader, distDir, variant.name], {
      timeout: 60_000,
    });
    assert.equal(result.status, 0, `loading ${modulePath} failed:\n${result.stderr}`);
    const { apiVersion } = JSON.parse(result.stdout);
    assert.ok(Number.isInteger(apiVersion), `sq_api_version() returned ${apiVersion}`);
    assert.ok(apiVersion >= 1, `sq_api_version() returned ${apiVersion}, expected at least 1`);
  });
}
