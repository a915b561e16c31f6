import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { unusedPort } from '../helpers/targets.js';

const DEMO = fileURLToPath(new URL('../../src/cli/demo.js', import.meta.url));

test("the quick start's demo: a round trip through the proxy, the browser page served, a clean stop", { timeout: 30_000 }, async () => {
  const port = await unusedPort();
  const demo = spawn(process.execPath, [DEMO, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(demo, 'exit');
  try {
    let stdout = '';
    demo.stdout.setEncoding('utf8');
    demo.stderr.resume();
    await new Promise<void>((resolve, reject) => {
      demo.stdout.on('data', (text: string) => {
        stdout += text;
        if (stdout.includes('wstelnet.html')) resolve();
      });
      void exited.then(() => reject(new Error(`the demo exited early:\n${stdout}`)));
    });
    assert.match(stdout, /Demo round trip through ws:\/\/localhost:\d+\/ worked/);
    assert.match(stdout, /HELLO THROUGH THE PROXY/, "the service's answer came back through the proxy");
    const page = await fetch(`http://127.0.0.1:${port}/wstelnet.html`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /wstelnet\.js/);
  } finally {
    demo.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
  }
});
