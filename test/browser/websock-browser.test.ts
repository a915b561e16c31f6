// Websock in Chromium: the built files in dist/web (npm run build writes them), served by the real proxy
// with --web, open a WebSocket through that proxy to an echo server; bytes pushed with the sQ methods
// come back through the rQ methods, in binary frames and in base64 text frames, from the classic script
// (global Websock) and from the ES module.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';

const webDir = fileURLToPath(new URL('../../web/', import.meta.url));

/** What the page reports after a round trip. */
interface PageResult {
  protocol: string;
  encoding: string;
  readyStateOpen: string;
  u8: number;
  u16: number;
  u32: number;
  u32b: number;
  str: string;
  all256: number[];
  bigMismatch: number;
  waitedOnce: boolean;
  tail: string;
  closed: boolean;
}

/**
 * Runs in the page: opens a Websock (from the global or the ES module) to `url`, pushes values of every
 * kind plus 300 KiB, and reads them back once rQwait says all are there.
 */
async function roundTripInPage(args: { url: string; protocols: string[] | null; fromModule: boolean }): Promise<PageResult> {
  type Sock = {
    open(uri: string, protocols?: string[]): void;
    on(event: string, handler: (event?: unknown) => void): void;
    close(): void;
    readonly protocol: string;
    readonly encoding: string;
    readonly readyState: string;
    rQwait(msg: string, num: number, goback?: number): boolean;
    rQshift8(): number;
    rQshift16(): number;
    rQshift32(): number;
    rQshiftStr(len: number): string;
    rQshiftBytes(len: number, copy?: boolean): Uint8Array;
    sQpush8(n: number): void;
    sQpush16(n: number): void;
    sQpush32(n: number): void;
    sQpushString(s: string): void;
    sQpushBytes(b: Uint8Array): void;
    flush(): void;
    send_string(s: string): void;
  };
  type SockClass = new () => Sock;
  const moduleUrl = '/websock.mjs';
  const Ctor: SockClass = args.fromModule
    ? ((await import(moduleUrl)) as { default: SockClass }).default
    : (globalThis as unknown as { Websock: SockClass }).Websock;
  const sock = new Ctor();
  const opened = new Promise<void>((resolve, reject) => {
    sock.on('open', () => resolve());
    sock.on('close', () => reject(new Error('closed before open')));
  });
  if (args.protocols === null) sock.open(args.url);
  else sock.open(args.url, args.protocols);
  await opened;
  const big = new Uint8Array(300 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  sock.sQpush8(0xab);
  sock.sQpush16(0xfffe);
  sock.sQpush32(0xffffffff);
  sock.sQpush32(0x80000001);
  sock.sQpushString('Hi\u00ff');
  sock.sQpushBytes(all);
  sock.sQpushBytes(big);
  sock.flush();
  sock.send_string('!');
  const total = 1 + 2 + 4 + 4 + 3 + 256 + big.length + 1;
  let waitedOnce = false;
  const result = await new Promise<PageResult>((resolve, reject) => {
    sock.on('close', () => reject(new Error('closed before the echo came back')));
    sock.on('message', () => {
      if (sock.rQwait('echo', total)) {
        waitedOnce = true;
        return;
      }
      const r: PageResult = {
        protocol: sock.protocol,
        encoding: sock.encoding,
        readyStateOpen: sock.readyState,
        u8: sock.rQshift8(),
        u16: sock.rQshift16(),
        u32: sock.rQshift32(),
        u32b: sock.rQshift32(),
        str: sock.rQshiftStr(3),
        all256: Array.from(sock.rQshiftBytes(256)),
        bigMismatch: -1,
        waitedOnce,
        tail: '',
        closed: false,
      };
      const back = sock.rQshiftBytes(big.length, false);
      for (let i = 0; i < big.length; i++) {
        if (back[i] !== big[i]) {
          r.bigMismatch = i;
          break;
        }
      }
      r.tail = sock.rQshiftStr(1);
      resolve(r);
    });
  });
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.close();
  await closed;
  result.closed = sock.readyState === 'closed';
  return result;
}

describe('Websock in Chromium, served by the proxy', () => {
  let echo: TestServer;
  let proxy: RunningProxy;
  let browser: Browser;
  let page: Page;
  const frames = { text: 0, binary: 0 };

  before(async () => {
    echo = await startEchoServer();
    proxy = await startProxy(['--web', webDir, '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('websocket', (ws) => {
      ws.on('framereceived', (frame) => (typeof frame.payload === 'string' ? frames.text++ : frames.binary++));
      ws.on('framesent', (frame) => (typeof frame.payload === 'string' ? frames.text++ : frames.binary++));
    });
    // Any document of the proxy's origin will do (the ES module import is same-origin): the script itself.
    const response = await page.goto(`http://127.0.0.1:${proxy.port}/websock.js`);
    assert.equal(response?.status(), 200);
    await page.addScriptTag({ url: '/websock.js' });
  });
  after(async () => {
    await browser?.close();
    await proxy?.stop();
    await echo?.close();
  });

  const expectValues = (result: PageResult): void => {
    assert.equal(result.readyStateOpen, 'open');
    assert.equal(result.u8, 0xab);
    assert.equal(result.u16, 0xfffe);
    assert.equal(result.u32, 0xffffffff);
    assert.equal(result.u32b, 0x80000001);
    assert.equal(result.str, 'Hi\u00ff');
    assert.deepEqual(
      result.all256,
      Array.from({ length: 256 }, (_, i) => i),
    );
    assert.equal(result.bigMismatch, -1, `300 KiB came back different from byte ${result.bigMismatch}`);
    assert.equal(result.tail, '!');
    assert.ok(result.closed, 'closed after close()');
  };

  const run = async (protocols: string[] | null, fromModule: boolean): Promise<PageResult> => {
    frames.text = 0;
    frames.binary = 0;
    return page.evaluate(roundTripInPage, { url: proxy.url, protocols, fromModule });
  };

  test('the classic script defines the global Websock class', async () => {
    const kind = await page.evaluate(() => {
      const W = (globalThis as unknown as { Websock?: unknown }).Websock;
      return typeof W === 'function' && typeof (W.prototype as Record<string, unknown>).rQshift32 === 'function';
    });
    assert.equal(kind, true);
  });

  test('classic script, default protocols: binary frames, every value back', async () => {
    const result = await run(null, false);
    assert.equal(result.protocol, 'binary');
    assert.equal(result.encoding, 'binary');
    expectValues(result);
    assert.ok(frames.binary > 0);
    assert.equal(frames.text, 0);
  });

  test("classic script, 'base64' only: text frames both ways, every value back", async () => {
    const result = await run(['base64'], false);
    assert.equal(result.protocol, 'base64');
    assert.equal(result.encoding, 'base64');
    expectValues(result);
    assert.ok(frames.text > 0);
    assert.equal(frames.binary, 0);
  });

  test('ES module via import(): binary', async () => {
    const result = await run(['binary'], true);
    assert.equal(result.protocol, 'binary');
    expectValues(result);
    assert.equal(frames.text, 0);
  });

  test('ES module via import(): base64', async () => {
    const result = await run(['base64'], true);
    assert.equal(result.protocol, 'base64');
    expectValues(result);
    assert.equal(frames.binary, 0);
  });

  test('the ES module is served as JavaScript', async () => {
    const response = await fetch(`http://127.0.0.1:${proxy.port}/websock.mjs`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /javascript/);
    assert.match(await response.text(), /export\s*{[^}]*Websock as default/);
  });
});
