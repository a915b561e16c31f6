// The noVNC client page of the browser tests: noVNC's own modules (core/, vendor/) served by --web, and a
// thin driver over its RFB object on `window.vnc`.
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';

export type Rgb = [number, number, number];
export type Point = [number, number];

/**
 * Per-channel slack: solid areas arrive exactly (Tight's fill), but noVNC may ask for lossy JPEG on busy
 * areas; the colours used differ from each other, and from black, by far more.
 */
export const TOLERANCE = 8;
/** What the page below puts on `window.vnc`: a thin driver over noVNC's RFB object. */
export interface VncPage {
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
/** The page's HTML, its screen `width` x `height`. */
export const vncPage = (width: number, height: number): string => `<!doctype html>
<html><head><meta charset="utf-8"><title>noVNC through websockify-ts</title>
<style>
  body { margin: 0; background: #1d1f21; color: #e0e0e0; font: 13px/24px monospace; }
  #status { height: 24px; padding: 0 8px; white-space: nowrap; overflow: hidden; }
  #screen { width: ${width}px; height: ${height}px; }
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
export function rgb(colour: string): Rgb {
  return [1, 3, 5].map((at) => parseInt(colour.slice(at, at + 2), 16)) as Rgb;
}

export const near = (a: Rgb, b: Rgb): boolean => a.every((value, i) => Math.abs(value - b[i]!) <= TOLERANCE);

/**
 * The page's globals, for the functions given to page.evaluate (which run in the page, so they can use
 * nothing from this module but types).
 */
export interface PageGlobals {
  vnc: VncPage;
}

/** Opens the proxy's page and waits until its module (and so noVNC, through the proxy) has loaded. */
export async function openPage(context: BrowserContext, origin: string, path = '/'): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}${path}`);
  // noVNC is some 60 modules, each a request to --web: on a busy 2-core machine that has taken over 15 s.
  await page.waitForFunction(() => 'vnc' in globalThis, undefined, { timeout: 45000 });
  return page;
}

export async function connect(page: Page, wsProtocols: string[] = []): Promise<string> {
  return page.evaluate((protocols) => (globalThis as unknown as PageGlobals).vnc.connect(protocols), wsProtocols);
}

/** Waits until every point of the canvas shows `colour`; fails naming what the canvas showed instead. */
export async function waitForColour(page: Page, points: Point[], colour: string, timeoutMs = 20000): Promise<void> {
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

/** Copies noVNC's modules into `webRoot` and writes the page there as `name`. */
export function installVncPage(webRoot: string, name: string, width: number, height: number): void {
  // Copied, not linked: the web server refuses links that lead out of its root.
  const novnc = dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc')));
  cpSync(join(novnc, 'core'), join(webRoot, 'core'), { recursive: true });
  cpSync(join(novnc, 'vendor'), join(webRoot, 'vendor'), { recursive: true });
  writeFileSync(join(webRoot, name), vncPage(width, height));
}
