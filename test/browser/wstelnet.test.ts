// The wstelnet page in Chromium, served by the real proxy with --web dist/web, talking to real servers:
// Debian's telnetd running a shell (over ws and wss) and ngircd, an IRC server that never negotiates.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Terminal } from '@xterm/xterm';
import type { Page } from 'playwright-core';
import { CHROMIUM, TestBrowser } from '../helpers/browser.js';
import { createPki, type Pki } from '../helpers/pki.js';
import { ProxyPool, type RunningProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { PROMPT, type Started, startTelnetService, stopProcess, TELNETD, track } from './telnetd.js';

/** What `npm run build` puts in dist/web (this file runs from dist/test/browser). */
const WEB_ROOT = fileURLToPath(new URL('../../web', import.meta.url));
const NGIRCD = '/usr/sbin/ngircd';
/** Write docs/images/wstelnet.png (the README's picture) only when asked, so a test run leaves the tree clean. */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../../docs/images/wstelnet.png', import.meta.url)) : undefined;

/** The part of `window.wstelnet` the tests read (see web/wstelnet.ts). */
interface PageGlobals {
  wstelnet: { term: Terminal };
}

/** ngircd on a free loopback port, with a minimal configuration in `dir`; resolves once it listens. */
async function startIrcServer(dir: string): Promise<{ port: number; started: Started }> {
  const port = await unusedPort();
  const config = join(dir, 'ngircd.conf');
  writeFileSync(
    config,
    [
      '[Global]',
      'Name = irc.wstelnet.test',
      'Info = wstelnet test server',
      'Listen = 127.0.0.1',
      `Ports = ${port}`,
      'MotdPhrase = Hello from the wstelnet test',
      '[Options]',
      'Ident = no',
      'PAM = no',
      'DNS = no',
      '',
    ].join('\n'),
  );
  const proc = spawn(NGIRCD, ['-n', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = track(proc);
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    const read = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Now listening on')) resolve();
    };
    proc.stdout!.on('data', read);
    proc.stderr!.on('data', read);
    proc.once('exit', (code) => reject(new Error(`ngircd exited (${code}) before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`ngircd did not listen within 15 s:\n${output}`)), 15000).unref();
  });
  try {
    await listening;
  } catch (error) {
    await stopProcess(started);
    throw error;
  }
  return { port, started };
}

/** The terminal's whole buffer as text, wrapped lines joined. */
function terminalText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const buffer = (globalThis as unknown as PageGlobals).wstelnet.term.buffer.active;
    let text = '';
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (line) text += (line.isWrapped ? '' : '\n') + line.translateToString(true);
    }
    return text;
  });
}

/** Waits until the terminal shows text matching `pattern`; fails with what it shows instead. */
async function waitForText(page: Page, pattern: RegExp, timeoutMs = 20000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await terminalText(page);
    const match = text.match(pattern);
    if (match) return match;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`the terminal did not show ${pattern} within ${timeoutMs} ms; it shows:\n${text}`);
}

const termSize = (page: Page): Promise<[number, number]> =>
  page.evaluate(() => {
    const { term } = (globalThis as unknown as PageGlobals).wstelnet;
    return [term.rows, term.cols] as [number, number];
  });

/** Types a line into the terminal as keystrokes, then Enter. */
async function typeLine(page: Page, line: string): Promise<void> {
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

const missing = [CHROMIUM, TELNETD, NGIRCD, '/bin/bash'].filter((path) => !existsSync(path));
// Under CI a missing program fails the tests (they run and cannot start it); elsewhere they are skipped.
const skip = missing.length > 0 && process.env.CI !== 'true' ? `missing: ${missing.join(', ')}` : false;

describe('wstelnet.html in Chromium, through the proxy', { skip }, () => {
  let dir: string;
  let telnet: Awaited<ReturnType<typeof startTelnetService>> | undefined;
  let irc: Started | undefined;
  let pki: Pki | undefined;
  const browser = new TestBrowser();
  const proxies = new ProxyPool();

  const proxy = (targetPort: number, extra: string[] = []): Promise<RunningProxy> =>
    proxies.start([...extra, '--web', WEB_ROOT, '127.0.0.1:0', `127.0.0.1:${targetPort}`]);
  const newPage = async (options: { ignoreHTTPSErrors?: boolean } = {}): Promise<Page> =>
    (await browser.newContext({ viewport: { width: 900, height: 560 }, ...options })).newPage();

  before(async () => {
    assert.ok(existsSync(join(WEB_ROOT, 'wstelnet.js')), `${WEB_ROOT}/wstelnet.js is missing: run npm run build`);
    dir = mkdtempSync(join(tmpdir(), 'wstelnet-'));
    telnet = await startTelnetService(dir);
    await browser.launch();
  });

  after(async () => {
    await browser.close();
    await proxies.stopAll();
    await telnet?.stop();
    if (irc) await stopProcess(irc);
    pki?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a shell over telnetd: commands run, UTF-8 shows, and the pty follows the page size', { timeout: 90000 }, async () => {
    const server = await proxy(telnet!.port);
    const page = await newPage();
    // Host, port and path default to the page's own location; autoconnect connects on load.
    await page.goto(`http://127.0.0.1:${server.port}/wstelnet.html?autoconnect=1`);
    await waitForText(page, /wstelnet\$ $/m);
    assert.match((await page.textContent('#status'))!, new RegExp(`^Connected to ws://127\\.0\\.0\\.1:${server.port}/websockify$`));
    assert.equal(await page.textContent('#connect'), 'Disconnect');
    assert.equal((await server.waitForEvent((e) => e.event === 'open')).path, '/websockify');

    await page.click('#terminal');
    await typeLine(page, 'echo MARK-$((40+2))');
    await waitForText(page, /^MARK-42$/m);
    // TERMINAL-TYPE reached telnetd, which put it in the shell's environment.
    await typeLine(page, 'echo "TERM=$TERM"');
    await waitForText(page, /^TERM=xterm-256color$/m);
    // Multibyte characters from the server, written as octal escapes so only ASCII is typed.
    await typeLine(page, "printf 'UTF8-\\303\\251t\\303\\251-\\342\\234\\223\\n'");
    await waitForText(page, /^UTF8-été-✓$/m);

    // NAWS: the pty has the terminal's size, and follows it when the page shrinks.
    const [rows, cols] = await termSize(page);
    await typeLine(page, 'stty size');
    await waitForText(page, new RegExp(`^${rows} ${cols}$`, 'm'));
    await page.setViewportSize({ width: 640, height: 400 });
    await page.waitForFunction(
      ([r, c]) => {
        const { term } = (globalThis as unknown as PageGlobals).wstelnet;
        return term.rows !== r && term.cols !== c;
      },
      [rows, cols],
      { timeout: 15000 },
    );
    const [newRows, newCols] = await termSize(page);
    assert.ok(newRows < rows && newCols < cols, `the terminal shrank: ${rows}x${cols} -> ${newRows}x${newCols}`);
    await typeLine(page, 'clear; stty size');
    await waitForText(page, new RegExp(`^${newRows} ${newCols}$`, 'm'));

    await page.setViewportSize({ width: 900, height: 560 });
    await page.waitForFunction(
      ([r, c]) => {
        const { term } = (globalThis as unknown as PageGlobals).wstelnet;
        return term.rows === r && term.cols === c;
      },
      [rows, cols],
      { timeout: 15000 },
    );
    // A clean screen for the picture: Ctrl-L, then a few commands.
    await page.keyboard.press('Control+l');
    await typeLine(page, 'echo MARK-$((40+2))');
    await typeLine(page, 'printf "caf\\303\\251 \\342\\234\\223\\n"');
    await typeLine(page, 'stty size');
    await waitForText(page, new RegExp(`\\n${rows} ${cols}\\n${PROMPT.replace('$', '\\$')}\\s*$`));
    const png = await page.screenshot();
    assert.ok(png.length > 1000 && png.subarray(1, 4).toString() === 'PNG');
    if (SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      writeFileSync(SCREENSHOT, png);
    }

    // Disconnect from the page: the proxy sees the client close.
    await page.click('#connect');
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('Disconnected'), undefined, {
      timeout: 15000,
    });
    const closed = await server.waitForEvent((e) => e.event === 'close');
    assert.equal(closed.initiator, 'client');
    assert.equal(await page.textContent('#connect'), 'Connect');
  });

  test('over wss: the page comes over https, Encrypt is checked, and the shell works', { timeout: 90000 }, async () => {
    pki = createPki();
    const cert = pki.issue('server', pki.ca);
    // --ssl-only: a plain ws:// connection would be refused, so a working session proves wss.
    const server = await proxy(telnet!.port, ['--ssl-only', '--cert', cert.cert, '--key', cert.key]);
    assert.equal(server.events().find((e) => e.event === 'listening')!.tls, 'only');
    const page = await newPage({ ignoreHTTPSErrors: true });
    // The form's values from the URL, then the Connect button.
    await page.goto(`https://127.0.0.1:${server.port}/wstelnet.html?host=127.0.0.1&port=${server.port}&encrypt=1&path=telnet`);
    assert.equal(await page.isChecked('#encrypt'), true);
    assert.equal(await page.inputValue('#path'), 'telnet');
    await page.click('#connect');
    await waitForText(page, /wstelnet\$ $/m);
    assert.match((await page.textContent('#status'))!, new RegExp(`^Connected to wss://127\\.0\\.0\\.1:${server.port}/telnet$`));
    assert.equal((await server.waitForEvent((e) => e.event === 'open')).path, '/telnet');
    await page.click('#terminal');
    await typeLine(page, 'echo SECURE-$((6*7))');
    await waitForText(page, /^SECURE-42$/m);
    await page.click('#connect');
    await server.waitForEvent((e) => e.event === 'close');
  });

  test('a line service that never negotiates (ngircd): local echo, lines sent on Enter, the welcome shows', {
    timeout: 90000,
  }, async () => {
    const ircServer = await startIrcServer(dir);
    irc = ircServer.started;
    const server = await proxy(ircServer.port);
    const page = await newPage();
    await page.goto(`http://127.0.0.1:${server.port}/wstelnet.html?autoconnect=1&token=abc%20def`);
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('Connected'), undefined, {
      timeout: 15000,
    });
    // The token rides in the WebSocket URL's query, where token plugins look for it.
    assert.equal((await server.waitForEvent((e) => e.event === 'open')).path, '/websockify?token=abc%20def');
    await page.click('#terminal');
    // A typo fixed with Backspace: the line is edited locally, and only the result is sent.
    await page.keyboard.type('NICK testerx');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Enter');
    await typeLine(page, 'USER tester 0 * :Test');
    await waitForText(page, /^:irc\.wstelnet\.test 001 tester :Welcome/m);
    const text = await terminalText(page);
    // The erased 'x' left a space behind, as a tty's erase (BS SP BS) does.
    assert.match(text, /^NICK tester ?$/m, 'the local echo');
    assert.match(text, /^USER tester 0 \* :Test$/m);
    assert.doesNotMatch(text, /Erroneous|Unknown command/, 'ngircd got clean lines');
    await typeLine(page, 'QUIT :bye');
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('Disconnected'), undefined, {
      timeout: 15000,
    });
    const closed = await server.waitForEvent((e) => e.event === 'close');
    assert.equal(closed.initiator, 'target');
  });
});
