// player.html in Chromium: real sessions recorded through the proxy (noVNC to Xvnc, wstelnet to telnetd)
// are played back from ?file= (served by the same --web) and what is drawn at the end is compared with
// what the live page showed; seeking, and broken files, too.
import assert from 'node:assert/strict';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Terminal } from '@xterm/xterm';
import type { BrowserContext, Page } from 'playwright-core';
import { FROM_CLIENT, RECORDING_FOOTER, RECORDING_HEADER, recordLength, TO_CLIENT, writeRecord } from '../../src/record/format.js';
import { parseRecording } from '../../src/record/reader.js';
import { CHROMIUM, TestBrowser } from '../helpers/browser.js';
import { ProxyPool, type RunningProxy } from '../helpers/proxy.js';
import {
  connect,
  installVncPage,
  openPage,
  type Point,
  type Rgb,
  rgb,
  type PageGlobals as VncGlobals,
  waitForColour,
} from './novnc-page.js';
import { startTelnetService, TELNETD } from './telnetd.js';
import { missingVncPrograms, startXvnc, type VncServer } from './xvnc.js';

/** What `npm run build` puts in dist/web (this file runs from dist/test/browser). */
const BUILT_WEB = fileURLToPath(new URL('../../web', import.meta.url));
const WIDTH = 800;
const HEIGHT = 600;
const GRID: Point[] = [20, WIDTH / 2, WIDTH - 20].flatMap((x) => [20, HEIGHT - 20].map((y): Point => [x, y]));
/** Every 8th pixel each way of the remote screen: what the live and the replayed canvases are compared on. */
const SAMPLES: Point[] = [];
for (let y = 0; y < HEIGHT; y += 8) for (let x = 0; x < WIDTH; x += 8) SAMPLES.push([x, y]);
/** Write docs/images/player-*.png (the README's pictures) only when asked, so a test run leaves the tree clean. */
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../../docs/images/', import.meta.url)) : undefined;

/** The player page's `window.player` (web/player/player.ts), as the tests use it. */
interface PlayerGlobals {
  player: {
    seek(ms: number): Promise<void>;
    state(): {
      loading: boolean;
      kind: string;
      count: number;
      duration: number;
      next: number;
      playing: boolean;
      seeking: boolean;
      message: string;
      memoryBytes: number;
    };
    settled(): Promise<void>;
    pixels(points: Point[]): Rgb[];
    canvasSize(): [number, number];
    text(): string;
  };
}
const player = (page: Page) => ({
  state: () => page.evaluate(() => (globalThis as unknown as PlayerGlobals).player.state()),
  seek: (ms: number) => page.evaluate((to) => (globalThis as unknown as PlayerGlobals).player.seek(to), ms),
  settled: () => page.evaluate(() => (globalThis as unknown as PlayerGlobals).player.settled()),
  pixels: (points: Point[]) => page.evaluate((at) => (globalThis as unknown as PlayerGlobals).player.pixels(at), points),
  text: () => page.evaluate(() => (globalThis as unknown as PlayerGlobals).player.text()),
  fact: (name: string) => page.textContent(`dd[data-fact="${name}"]`),
});

/** Opens the player on a recording, played as fast as possible from the start; resolves once it has played to the end. */
async function playToEnd(context: BrowserContext, origin: string, file: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}/player.html?file=${encodeURIComponent(file)}&speed=max&autoplay=1`);
  await playedToEnd(page);
  return page;
}

/** Waits until the page has a recording loaded and played to its end, and drawn. */
async function playedToEnd(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const state = (globalThis as unknown as PlayerGlobals).player?.state();
      return state !== undefined && !state.loading && state.count > 0 && state.next === state.count && !state.playing && !state.seeking;
    },
    undefined,
    { timeout: 60000 },
  );
  await player(page).settled();
}

/** Calls one of the page's `window.player` methods that take a number or nothing. */
const call = (page: Page, method: 'play' | 'pause' | 'setSpeed', argument?: number) =>
  page.evaluate(
    ([name, value]) => {
      const target = (globalThis as unknown as { player: Record<string, (v?: number) => void> }).player;
      target[name as string]!(value as number | undefined);
    },
    [method, argument] as const,
  );

/** Waits until the recording's file is complete: the proxy writes its end line after the session closes. */
async function recordingDone(file: string): Promise<string> {
  const deadline = Date.now() + 15000;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    if (/\nvar VNC_frame_end = '.*';\n$/.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`${file} was not completed: ${text.slice(-200)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits for the player to settle after a seek, then for the page to be drawn. */
async function seekAndWait(page: Page, ms: number): Promise<void> {
  await player(page).seek(ms);
  await page.waitForFunction(() => !(globalThis as unknown as PlayerGlobals).player.state().seeking, undefined, { timeout: 60000 });
  await player(page).settled();
}

/**
 * Writes a large text-session recording: `clientMiB` MiB of binary client data (an upload, say: four file
 * bytes per byte once escaped), each chunk answered by a numbered line from the server.
 * @returns the file's size and the number of messages.
 */
function writeLargeRecording(file: string, clientMiB: number): { bytes: number; messages: number } {
  const fd = openSync(file, 'w');
  let bytes = writeSync(fd, RECORDING_HEADER);
  const upload = Buffer.alloc(256 * 1024);
  for (let i = 0; i < upload.length; i++) upload[i] = 0x80 | ((i * 7919) & 0x7f);
  const chunks = clientMiB * 4;
  for (let n = 0; n < chunks; n++) {
    for (const [marker, data] of [
      [FROM_CLIENT, upload],
      [TO_CLIENT, Buffer.from(`received part ${n + 1} of ${chunks}\r\n`)],
    ] as const) {
      const line = Buffer.alloc(recordLength(n * 10, data));
      writeRecord(line, 0, marker, n * 10, data);
      bytes += writeSync(fd, line);
    }
  }
  bytes += writeSync(fd, RECORDING_FOOTER);
  closeSync(fd);
  return { bytes, messages: chunks * 2 };
}

const missing = [...missingVncPrograms(), ...[CHROMIUM, TELNETD, '/bin/bash'].filter((path) => !existsSync(path))];
// Under CI a missing program fails the tests (in the `before` hook); elsewhere they are skipped.
const skip = missing.length > 0 && process.env.CI !== 'true' ? `missing: ${missing.join(', ')}` : false;

describe('player.html in Chromium: recorded sessions played back', { skip }, () => {
  let webRoot: string;
  let vncServer: VncServer | undefined;
  let telnet: Awaited<ReturnType<typeof startTelnetService>> | undefined;
  const browser = new TestBrowser();
  const proxies = new ProxyPool();

  const proxy = (target: number, record: string): Promise<RunningProxy> =>
    proxies.start(['--web', webRoot, '--record', join(webRoot, record), '127.0.0.1:0', `127.0.0.1:${target}`]);
  const newContext = (width = 1100, height = 680): Promise<BrowserContext> => browser.newContext({ viewport: { width, height } });

  before(async () => {
    if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`);
    assert.ok(existsSync(join(BUILT_WEB, 'player.js')), `${BUILT_WEB}/player.js is missing: run npm run build`);
    webRoot = mkdtempSync(join(tmpdir(), 'websockify-player-'));
    // The built pages, noVNC for the live VNC page, and the recordings, all under one --web root.
    cpSync(BUILT_WEB, webRoot, { recursive: true });
    installVncPage(webRoot, 'vnc.html', WIDTH, HEIGHT);
    await browser.launch();
  });

  after(async () => {
    await browser.close();
    await proxies.stopAll();
    await vncServer?.stop();
    await telnet?.stop();
    if (webRoot) rmSync(webRoot, { recursive: true, force: true });
  });

  test('a noVNC session to Xvnc: the replay ends on the live canvas, pixel for pixel; seeking back shows the earlier screen', {
    timeout: 180000,
  }, async () => {
    vncServer = await startXvnc({ width: WIDTH, height: HEIGHT, desktop: 'player test desktop' });
    await vncServer.setRoot('#12ab34');
    vncServer.launch('xlogo', ['-geometry', '220x220+470+250', '-bg', '#ffffff', '-fg', '#202020']);
    const server = await proxy(vncServer.rfbPort, 'vnc');
    const origin = `http://127.0.0.1:${server.port}`;
    const live = await openPage(await newContext(WIDTH, HEIGHT + 24), origin, '/vnc.html');
    const started = Date.now();
    await connect(live);
    await waitForColour(live, GRID, '#12ab34');
    await waitForColour(live, [[580, 256]], '#ffffff');
    // Green for a while, then blue: the middle of the recording is green.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const greenUntil = Date.now() - started;
    await vncServer.setRoot('#2050c0');
    await waitForColour(live, GRID, '#2050c0');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const liveScreen = await live.evaluate((at) => (globalThis as unknown as VncGlobals).vnc.pixels(at), SAMPLES);
    assert.equal(await live.evaluate(() => (globalThis as unknown as VncGlobals).vnc.disconnect()), true);
    await server.waitForEvent((e) => e.event === 'close');
    const recording = await recordingDone(join(webRoot, 'vnc.1'));
    assert.match(recording, /^var VNC_frame_encoding = 'binary';\nvar VNC_frame_session = '\{/);

    const page = await playToEnd(await newContext(), origin, 'vnc.1');
    const replay = player(page);
    assert.equal((await replay.state()).kind, 'vnc', 'found from the RFB greeting');
    assert.equal((await replay.state()).message, '');
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as PlayerGlobals).player.canvasSize()), [WIDTH, HEIGHT]);
    const replayed = await replay.pixels(SAMPLES);
    const differing = SAMPLES.filter((_, i) => replayed[i]!.some((value, c) => value !== liveScreen[i]![c]));
    assert.equal(differing.length, 0, `pixels that differ from the live canvas: ${JSON.stringify(differing.slice(0, 10))}`);

    // The session's facts from the file.
    assert.match((await replay.fact('client'))!, /^127\.0\.0\.1:\d+$/);
    assert.equal(await replay.fact('target'), `127.0.0.1:${vncServer.rfbPort}`);
    assert.equal(await replay.fact('path'), '/websockify');
    assert.match((await replay.fact('closed by'))!, /^client, code 100[05]/);
    assert.match((await replay.fact('started'))!, /^\d{4}-\d\d-\d\dT/);
    if (SCREENSHOTS) writeFileSync(join(SCREENSHOTS, 'player-vnc.png'), await page.screenshot());

    // Back to the middle: replayed from the start, green again; then forward to the end: blue again.
    const duration = (await replay.state()).duration;
    const middle = greenUntil - 800;
    assert.ok(middle > 0 && middle < duration, `${middle} within ${duration}`);
    await seekAndWait(page, middle);
    const want = (colour: string) => GRID.map(() => rgb(colour));
    assert.deepEqual(await replay.pixels(GRID), want('#12ab34'));
    assert.ok((await replay.state()).next < (await replay.state()).count);
    await seekAndWait(page, duration);
    assert.deepEqual(await replay.pixels(GRID), want('#2050c0'));
    const again = await replay.pixels(SAMPLES);
    assert.ok(
      again.every((pixel, i) => pixel.every((value, c) => value === liveScreen[i]![c])),
      'the live screen again',
    );

    // A cut file plays what it has and says it is incomplete; a corrupt one says where it breaks.
    writeFileSync(join(webRoot, 'cut.1'), recording.slice(0, Math.floor(recording.length * 0.6)));
    const cut = await playToEnd(await newContext(), origin, 'cut.1');
    assert.match((await player(cut).state()).message, /^This recording is incomplete: line \d+: .*can be played\.$/);
    assert.equal(await cut.getAttribute('#message', 'data-kind'), 'warning');
    const lines = recording.split('\n');
    lines[6] = "'{12{RFB \\q', garbage";
    writeFileSync(join(webRoot, 'corrupt.1'), lines.join('\n'));
    const corrupt = await (await newContext()).newPage();
    await corrupt.goto(`${origin}/player.html?file=corrupt.1`);
    await corrupt.waitForFunction(() => Boolean((globalThis as unknown as Partial<PlayerGlobals>).player?.state().message), undefined, {
      timeout: 30000,
    });
    assert.match(
      (await player(corrupt).state()).message,
      /^This file is not a valid session recording: line 7: expected a single-quoted string\. The \d+ messages before it \(up to \d+:\d\d\.\d\) can be played\.$/,
    );
    assert.equal(await corrupt.isVisible('#message'), true);
    await corrupt.goto(`${origin}/player.html?file=missing.1`);
    await corrupt.waitForFunction(() => Boolean((globalThis as unknown as Partial<PlayerGlobals>).player?.state().message), undefined, {
      timeout: 30000,
    });
    assert.match((await player(corrupt).state()).message, /^Cannot read missing\.1: HTTP 404/);
  });

  test('a wstelnet session to telnetd: the replay ends on the live terminal text; seeking back shows the earlier text', {
    timeout: 180000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'player-telnet-'));
    try {
      telnet = await startTelnetService(dir);
      const server = await proxy(telnet.port, 'telnet');
      const origin = `http://127.0.0.1:${server.port}`;
      const live = await (await newContext(900, 560)).newPage();
      await live.goto(`${origin}/wstelnet.html?autoconnect=1&token=t-1`);
      const liveText = () =>
        live.evaluate(() => {
          const buffer = (globalThis as unknown as { wstelnet: { term: Terminal } }).wstelnet.term.buffer.active;
          let text = '';
          for (let i = 0; i < buffer.length; i++) {
            const line = buffer.getLine(i);
            if (line) text += (line.isWrapped ? '' : '\n') + line.translateToString(true);
          }
          return text;
        });
      const waitFor = async (pattern: RegExp): Promise<void> => {
        await live.waitForFunction(
          (source) => {
            const buffer = (globalThis as unknown as { wstelnet: { term: Terminal } }).wstelnet.term.buffer.active;
            let text = '';
            for (let i = 0; i < buffer.length; i++) text += `\n${buffer.getLine(i)?.translateToString(true) ?? ''}`;
            return new RegExp(source, 'm').test(text);
          },
          pattern.source,
          { timeout: 20000 },
        );
      };
      await waitFor(/wstelnet\$ $/);
      await live.click('#terminal');
      await live.keyboard.type('echo FIRST-$((40+2))');
      await live.keyboard.press('Enter');
      await waitFor(/^FIRST-42$/);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await live.keyboard.type("printf 'LATER-\\303\\251t\\303\\251\\n'; stty size");
      await live.keyboard.press('Enter');
      await waitFor(/^\d+ \d+\n.*wstelnet\$ $/);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const final = await liveText();
      assert.match(final, /^LATER-été$/m);
      await live.click('#connect');
      await server.waitForEvent((e) => e.event === 'close');
      // The middle: after the server printed FIRST-42, before the next keystroke, by the recording's own times.
      const messages = parseRecording(await recordingDone(join(webRoot, 'telnet.1')));
      const first = messages.find((m) => m.direction === 'toClient' && m.data.includes('FIRST-42\r\n'))!;
      const next = messages.find((m) => m.direction === 'fromClient' && m.ms >= first.ms)!;
      const middle = (first.ms + next.ms) / 2;

      const page = await playToEnd(await newContext(), origin, 'telnet.1');
      const replay = player(page);
      assert.equal((await replay.state()).kind, 'text');
      assert.equal(await replay.text(), final, 'the replayed terminal shows what the live one did');
      assert.equal(await replay.fact('token'), 't-1');
      assert.equal(await replay.fact('path'), '/websockify?token=t-1');
      assert.match((await replay.fact('closed by'))!, /^client, code 100[05]/);
      assert.equal(await page.textContent('#to-played'), await page.textContent('#to-total'));
      if (SCREENSHOTS) {
        mkdirSync(dirname(join(SCREENSHOTS, 'x')), { recursive: true });
        writeFileSync(join(SCREENSHOTS, 'player-telnet.png'), await page.screenshot());
      }

      await seekAndWait(page, middle);
      const earlier = await replay.text();
      assert.match(earlier, /^FIRST-42$/m);
      assert.doesNotMatch(earlier, /LATER/);
      await seekAndWait(page, (await replay.state()).duration);
      assert.equal(await replay.text(), final);

      // The kind can be forced: the same bytes as VNC are not a VNC session, and the page says so.
      // In real time at 16x, and paused: the position holds still.
      await seekAndWait(page, 0);
      await call(page, 'setSpeed', 16);
      await call(page, 'play');
      await playedToEnd(page);
      assert.equal(await replay.text(), final);
      await seekAndWait(page, 0);
      await call(page, 'setSpeed', 0.5);
      await call(page, 'play');
      await call(page, 'pause');
      const paused = await replay.state();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await replay.state()).playing, false);
      assert.equal((await replay.state()).next, paused.next);

      // The file picker and drag and drop read a local file through File.stream().
      const picked = await (await newContext()).newPage();
      await picked.goto(`${origin}/player.html?speed=max`);
      await picked.setInputFiles('#file', join(webRoot, 'telnet.1'));
      await picked.waitForFunction(() => (globalThis as unknown as PlayerGlobals).player.state().count > 0, undefined, { timeout: 30000 });
      await call(picked, 'play');
      await playedToEnd(picked);
      assert.equal(await player(picked).text(), final);
      assert.equal(await picked.textContent('#source'), 'telnet.1');
      await picked.evaluate(async () => {
        const bytes = await (await fetch('telnet.1')).arrayBuffer();
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.1'));
        document.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      });
      await picked.waitForFunction(
        () =>
          document.getElementById('source')!.textContent === 'dropped.1' &&
          (globalThis as unknown as PlayerGlobals).player.state().count > 0,
        undefined,
        { timeout: 30000 },
      );
      await call(picked, 'play');
      await playedToEnd(picked);
      assert.equal(await player(picked).text(), final);

      await page.selectOption('#kind', 'vnc');
      await page.evaluate(() => (globalThis as unknown as { player: { play(): void } }).player.play());
      await page.waitForFunction(
        () => /Cannot draw this recording as VNC/.test(document.getElementById('message')!.textContent ?? ''),
        undefined,
        {
          timeout: 30000,
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a recording of hundreds of MiB loads in steps (the page answers meanwhile) and keeps only the server data in memory', {
    timeout: 300000,
  }, async () => {
    const { bytes, messages } = writeLargeRecording(join(webRoot, 'large.1'), 64);
    assert.ok(bytes > 256 * 1024 * 1024, `${bytes} bytes`);
    const server = await proxies.start(['--web', webRoot, '127.0.0.1:0', '127.0.0.1:9']);
    const page = await (await newContext()).newPage();
    await page.goto(`http://127.0.0.1:${server.port}/player.html?file=large.1`);
    // Asked while it loads, the page answers, with part of the messages read: it parses as the file streams in.
    const counts = new Set<number>();
    for (;;) {
      const state = await page.evaluate(() => (globalThis as unknown as Partial<PlayerGlobals>).player?.state());
      if (state === undefined) continue;
      if (state.loading) counts.add(state.count);
      else if (state.count > 0 || state.message) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const partial = [...counts].filter((count) => count > 0 && count < messages);
    assert.ok(partial.length >= 2, `counts seen while loading: ${[...counts].join(', ')}`);
    const loaded = await player(page).state();
    assert.equal(loaded.message, '');
    assert.equal(loaded.count, messages);
    assert.equal(loaded.kind, 'text');
    // The client's upload is not kept: the server's lines and the index are, a few MiB for a 256 MiB file.
    assert.ok(loaded.memoryBytes < 8 * 1024 * 1024, `${loaded.memoryBytes} bytes kept`);
    await page.evaluate(() => (globalThis as unknown as { player: { setSpeed(s: number): void; play(): void } }).player.setSpeed(Infinity));
    await page.evaluate(() => (globalThis as unknown as { player: { play(): void } }).player.play());
    await page.waitForFunction(
      () => {
        const state = (globalThis as unknown as PlayerGlobals).player.state();
        return state.next === state.count && !state.playing;
      },
      undefined,
      { timeout: 120000 },
    );
    await player(page).settled();
    assert.match(await player(page).text(), /^received part 256 of 256$/m);
    assert.equal(await page.textContent('#from-played'), '256 · 64.0 MiB');
  });
});
