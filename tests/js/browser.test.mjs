// Loads each Emscripten variant on a page in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) from a static server on 127.0.0.1, and calls an export. The server
// sends the COOP and COEP headers, so the pthread variant gets SharedArrayBuffer. Server and
// browser set-up: tests/js/fixtures/browser-harness.mjs; tests/js/browser-parity.test.mjs runs
// the variants in a worker and compares their perplexity with the native CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { launchChromium, startServer } from './fixtures/browser-harness.mjs';
import { distDir, emscriptenVariants } from './fixtures/targets.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const variant of emscriptenVariants) {
  const modulePath = path.join(distDir, `spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && variant.name !== 'simd' ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} module loads in Chromium`, { skip, timeout: 60_000 }, async () => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    const page = await browser.context.newPage();
    const consoleErrors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    try {
      await page.goto(`${server.origin}/`);
      const result = await page.evaluate(async (url) => {
        const { default: createSpinquantModule } = await import(url);
        const module = await createSpinquantModule({ pthreadPoolSize: 1 });
        return { apiVersion: module._sq_api_version(), isolated: self.crossOriginIsolated };
      }, `${server.origin}/dist/spinquant-${variant.name}.mjs`);
      assert.ok(Number.isInteger(result.apiVersion), `sq_api_version() returned ${result.apiVersion}`);
      assert.ok(result.apiVersion >= 1, `sq_api_version() returned ${result.apiVersion}, expected at least 1`);
      assert.equal(result.isolated, true, 'the page is not cross-origin isolated');
      assert.deepEqual(consoleErrors, []);
    } finally {
      await page.close();
    }
  });
}
