import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { createPki, type Pki } from '../helpers/pki.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { missingVncPrograms, startXvnc, type VncServer } from './xvnc.js';

const WIDTH = 800;
const HEIGHT = 600;
type Rgb = [number, number, number];
type Point = [number, number];

/** Where the canvas is sampled: the corners, the edges' middles and the centre of the remote screen. */
const GRID: Point[] = [0, WIDTH / 2, WIDTH - 1].flatMap((x) => [0, HEIGHT / 2, HEIGHT - 1].map((y): Point => [x, y]));
/**
 * Per-channel slack: solid areas arrive exactly (Tight's fill), but noVNC may ask for lossy JPEG on busy
 * areas; the colours used differ from each other, and from black, by far more.
 */
const TOLERANCE = 8;
const DESKTOP = 'websockify-ts test desktop';
/** Write docs/images/novnc.png (the README's picture) only when asked, so a test run leaves the tree clean. */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../../docs/images/novnc.png', import.meta.url)) : undefined;

/** What the page below puts on `window.vnc`: a thin driver over noVNC's RFB object. */
interface VncPage {
  /** Connects with `new RFB`; resolves with the desktop name on 'connect', rejects on a failure before it. */
  connect(wsProtocols: string[]): Promise<string>;
  /** Disconnects; resolves with the 'disconnect' event's `clean`. */
  disconnect(): Promise<boolean>;
  /** The canvas noVNC draws on: its size. */
  size(): [number, number];
  /** RGB of the canvas at each point, read with getImageData. */
  pixels(points: Point[]): Rgb[];
}

/**
 * The client page, served by the proxy beside noVNC's own modules (core/, vendor/): it imports core/rfb.js
 * as an ES module, as an application embedding noVNC does, and connects back to the host that served it
 * (wss when the page came over https).
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>noVNC through websockify-ts</title>
<style>
  body { margin: 0; background: #1d1f21; color: #e0e0e0; font: 13px/24px monospace; }
  #status { height: 24px; padding: 0 8px; white-space: nowrap; overflow: hidden; }
  #screen { width: ${WIDTH}px; height: ${HEIGHT}px; }
</style></head>
<body><div id="status">loading</div><div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';
const status = document.getElementById('status');
const screen = document.getElementById('screen');
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/websockify';
let rfb;
window.vnc = {
  connect(wsProtocols) {
    status.textContent = 'connecting to ' + url;
    rfb = new RFB(screen, url, { wsProtocols });
    let name = '';
    return new Promise((resolve, reject) => {
      rfb.addEventListener('desktopname', (e) => { name = e.detail.name; });
      rfb.addEventListener('connect', () => {
        status.textContent = 'noVNC ' + String.fromCharCode(8594) + ' websockify-ts ' + url + ' ' + String.fromCharCode(8594) + ' ' + name;
        resolve(name);
      });
      rfb.addEventListener('securityfailure', (e) => reject(new Error('security failure ' + e.detail.status)));
      rfb.addEventListener('disconnect', (e) => {
        status.textContent = 'disconnected';
        reject(new Error('disconnected before connecting (clean: ' + e.detail.clean + ')'));
      });
    });
  },
  disconnect() {
    return new Promise((resolve) => {
      rfb.addEventListener('disconnect', (e) => resolve(e.detail.clean));
      rfb.disconnect();
    });
  },
  size() {
    const canvas = screen.querySelector('canvas');
    return canvas ? [canvas.width, canvas.height] : [0, 0];
  },
  pixels(points) {
    const context = screen.querySelector('canvas').getContext('2d');
    return points.map(([x, y]) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3)));
  },
};
</script></body></html>
`;

/** `#rrggbb` as numbers. */
function rgb(colour: string): Rgb {
  return [1, 3, 5].map((at) => parseInt(colour.slice(at, at + 2), 16)) as Rgb;
}

const near = (a: Rgb, b: Rgb): boolean => a.every((value, i) => Math.abs(value - b[i]!) <= TOLERANCE);

/**
 * The page's globals, for the functions given to page.evaluate (which run in the page, so they can use
 * nothing from this module but types).
 */
interface PageGlobals {
  vnc: VncPage;
}

/** Opens the proxy's page and waits until its module (and so noVNC, through the proxy) has loaded. */
async function openPage(context: BrowserContext, origin: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  // noVNC is some 60 modules, each a request to --web: on a busy 2-core machine that has taken over 15 s.
  await page.waitForFunction(() => 'vnc' in globalThis, undefined, { timeout: 45000 });
  return page;
}

async function connect(page: Page, wsProtocols: string[] = []): Promise<string> {
  return page.evaluate((protocols) => (globalThis as unknown as PageGlobals).vnc.connect(protocols), wsProtocols);
}

/** Waits until every point of the canvas shows `colour`; fails naming what the canvas showed instead. */
async function waitForColour(page: Page, points: Point[], colour: string, timeoutMs = 20000): Promise<void> {
  const want = rgb(colour);
  const deadline = Date.now() + timeoutMs;
  let seen: Rgb[] = [];
  while (Date.now() < deadline) {
    seen = await page.evaluate((at) => (globalThis as unknown as PageGlobals).vnc.pixels(at), points);
    if (seen.every((pixel) => near(pixel, want))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(
    seen,
    points.map(() => want),
    `the canvas did not show ${colour} within ${timeoutMs} ms`,
  );
}

const missing = missingVncPrograms();
// Under CI a missing program fails the tests (in the `before` hook); elsewhere they are skipped.
const skip = missing.length > 0 && process.env.CI !== 'true' ? `missing: ${missing.join(', ')}` : false;

describe('noVNC through the proxy to Xvnc, in Chromium', { skip }, () => {
  let vncServer: VncServer | undefined;
  let browser: Browser | undefined;
  let webRoot: string | undefined;
  let pki: Pki | undefined;
  const proxies: RunningProxy[] = [];
  const contexts: BrowserContext[] = [];

  /** Starts a proxy serving `webRoot` in front of Xvnc; stopped after the tests. */
  const proxy = async (extra: string[] = []): Promise<RunningProxy> => {
    const started = await startProxy([...extra, '--web', webRoot!, '127.0.0.1:0', `127.0.0.1:${vncServer!.rfbPort}`]);
    proxies.push(started);
    return started;
  };
  const newContext = async (options: { ignoreHTTPSErrors?: boolean } = {}): Promise<BrowserContext> => {
    const context = await browser!.newContext({ viewport: { width: WIDTH, height: HEIGHT + 24 }, ...options });
    contexts.push(context);
    return context;
  };
  const opens = (p: RunningProxy): Array<Record<string, unknown>> => p.events().filter((e) => e.event === 'open');

  before(async () => {
    if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`);
    webRoot = mkdtempSync(join(tmpdir(), 'websockify-novnc-'));
    // Copied, not linked: the web server refuses links that lead out of its root.
    const novnc = dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc')));
    cpSync(join(novnc, 'core'), join(webRoot, 'core'), { recursive: true });
    cpSync(join(novnc, 'vendor'), join(webRoot, 'vendor'), { recursive: true });
    writeFileSync(join(webRoot, 'index.html'), PAGE);
    vncServer = await startXvnc({ width: WIDTH, height: HEIGHT, desktop: DESKTOP });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await Promise.all(proxies.map((p) => p.stop()));
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
