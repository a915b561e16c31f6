import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { TestBrowser } from '../helpers/browser.js';
import { createPki, type Pki } from '../helpers/pki.js';
import { ProxyPool, type RunningProxy } from '../helpers/proxy.js';
import { connect, installVncPage, openPage, type PageGlobals, type Point, waitForColour } from './novnc-page.js';
import { missingVncPrograms, startXvnc, type VncServer } from './xvnc.js';

const WIDTH = 800;
const HEIGHT = 600;
/** Where the canvas is sampled: the corners, the edges' middles and the centre of the remote screen. */
const GRID: Point[] = [0, WIDTH / 2, WIDTH - 1].flatMap((x) => [0, HEIGHT / 2, HEIGHT - 1].map((y): Point => [x, y]));
const DESKTOP = 'websockify-ts test desktop';
/** Write docs/images/novnc.png (the README's picture) only when asked, so a test run leaves the tree clean. */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../../docs/images/novnc.png', import.meta.url)) : undefined;

const missing = missingVncPrograms();
// Under CI a missing program fails the tests (in the `before` hook); elsewhere they are skipped.
const skip = missing.length > 0 && process.env.CI !== 'true' ? `missing: ${missing.join(', ')}` : false;

describe('noVNC through the proxy to Xvnc, in Chromium', { skip }, () => {
  let vncServer: VncServer | undefined;
  let webRoot: string | undefined;
  let pki: Pki | undefined;
  const browser = new TestBrowser();
  const proxies = new ProxyPool();

  /** Starts a proxy serving `webRoot` in front of Xvnc; stopped after the tests. */
  const proxy = (extra: string[] = []): Promise<RunningProxy> =>
    proxies.start([...extra, '--web', webRoot!, '127.0.0.1:0', `127.0.0.1:${vncServer!.rfbPort}`]);
  const newContext = (options: { ignoreHTTPSErrors?: boolean } = {}): Promise<BrowserContext> =>
    browser.newContext({ viewport: { width: WIDTH, height: HEIGHT + 24 }, ...options });
  const opens = (p: RunningProxy): Array<Record<string, unknown>> => p.events().filter((e) => e.event === 'open');

  before(async () => {
    if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`);
    webRoot = mkdtempSync(join(tmpdir(), 'websockify-novnc-'));
    installVncPage(webRoot, 'index.html', WIDTH, HEIGHT);
    vncServer = await startXvnc({ width: WIDTH, height: HEIGHT, desktop: DESKTOP });
    await browser.launch();
  });

  after(async () => {
    await browser.close();
    await proxies.stopAll();
    await vncServer?.stop();
    pki?.remove();
    if (webRoot) rmSync(webRoot, { recursive: true, force: true });
  });

  test('the page and noVNC come from --web, the session connects, and the canvas shows the remote screen, live', async () => {
    const server = await proxy();
    await vncServer!.setRoot('#12ab34');
    const page = await openPage(await newContext(), `http://127.0.0.1:${server.port}`);
    const name = await connect(page);
    assert.equal(name, DESKTOP, 'the desktop name from the server init message');
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.size()), [WIDTH, HEIGHT]);
    await waitForColour(page, GRID, '#12ab34');

    // A change on the server reaches the open session: noVNC keeps asking for updates through the proxy.
    await vncServer!.setRoot('#2050c0');
    await waitForColour(page, GRID, '#2050c0');

    const served = server
      .events()
      .filter((e) => e.event === 'web' && e.status === 200)
      .map((e) => e.path);
    for (const path of ['/', '/core/rfb.js', '/vendor/pako/lib/zlib/inflate.js'])
      assert.ok(served.includes(path), `${path} served by the proxy: ${served.join(' ')}`);
    assert.equal(opens(server).length, 1);
    assert.equal(opens(server)[0]!.path, '/websockify');

    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.disconnect()), true, 'a clean disconnect');
    const closed = await server.waitForEvent((e) => e.event === 'close');
    assert.equal(closed.initiator, 'client');
    assert.ok(Number(closed.bytesFromClient) > 0 && Number(closed.bytesFromTarget) > 0, JSON.stringify(closed));
  });

  test('a second connection after the first disconnects shows the screen as it is now', async () => {
    const server = await proxy();
    const page = await openPage(await newContext(), `http://127.0.0.1:${server.port}`);
    await vncServer!.setRoot('#c0306a');
    // The first offers the `binary` subprotocol, as older noVNC releases did; the second offers none.
    await connect(page, ['binary']);
    await waitForColour(page, GRID, '#c0306a');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.disconnect()), true);
    await server.waitForEvent((e) => e.event === 'close' && e.conn === 1);

    await vncServer!.setRoot('#e0a010');
    await connect(page);
    await waitForColour(page, GRID, '#e0a010');
    assert.deepEqual(
      opens(server).map((e) => [e.conn, e.protocol]),
      [
        [1, 'binary'],
        [2, 'none'],
      ],
    );
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.disconnect()), true);
    await server.waitForEvent((e) => e.event === 'close' && e.conn === 2);
  });

  test('over --ssl-only: the page comes over https and the session over wss', async () => {
    pki = createPki();
    const cert = pki.issue('server', pki.ca);
    const server = await proxy(['--ssl-only', '--cert', cert.cert, '--key', cert.key]);
    assert.equal(server.events().find((e) => e.event === 'listening')!.tls, 'only');
    await vncServer!.setRoot('#7a40d0');
    // The certificate comes from a throw-away authority Chromium does not know.
    const page = await openPage(await newContext({ ignoreHTTPSErrors: true }), `https://127.0.0.1:${server.port}`);
    assert.equal(new URL(page.url()).protocol, 'https:');
    await connect(page);
    await waitForColour(page, GRID, '#7a40d0');
    assert.equal(opens(server).length, 1);
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.disconnect()), true);
    await server.waitForEvent((e) => e.event === 'close');
  });

  test('windows opened on the server appear on the canvas (the README screenshot)', async () => {
    const server = await proxy();
    await vncServer!.setRoot('#12ab34');
    vncServer!.launch('xclock', ['-geometry', '260x260+90+110', '-bg', '#f4f1e8', '-update', '1']);
    vncServer!.launch('xlogo', ['-geometry', '220x220+470+250', '-bg', '#ffffff', '-fg', '#202020']);
    const page = await openPage(await newContext(), `http://127.0.0.1:${server.port}`);
    await connect(page);
    // Inside xclock's top-left corner (past its 1-pixel border), and xlogo's top edge between the X's arms.
    await waitForColour(page, [[96, 116]], '#f4f1e8');
    await waitForColour(page, [[580, 256]], '#ffffff');
    await waitForColour(
      page,
      [
        [20, 20],
        [WIDTH - 20, HEIGHT - 20],
      ],
      '#12ab34',
    );
    const png = await page.screenshot({ fullPage: true });
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    if (SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      writeFileSync(SCREENSHOT, png);
    }
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vnc.disconnect()), true);
  });
});
