// TokenFile reads a file again only when it changed: inotifywait (a real inotify watcher) reports every
// open of the token files while the proxy serves lookups. An unchanged file is only stat'ed (no open);
// an edited one is read, and its new tokens served. Each count is taken after an open of a sentinel file
// has been reported, so that every open before it has been too (one inotify queue keeps events in order).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { attempt, tokenFixture } from './support.js';

const INOTIFYWAIT = '/usr/bin/inotifywait';
const { temp, proxies, targets } = tokenFixture();

/** The opens of some files as inotifywait reports them, by file. */
class OpenWatch {
  private readonly opens = new Map<string, number>();
  private constructor(
    private readonly proc: ChildProcess,
    private readonly sentinel: string,
  ) {}

  /** Watches `files` (each must exist), and a sentinel file of its own, until {@link stop}. */
  static async start(files: string[]): Promise<OpenWatch> {
    const sentinel = path.join(temp.dir, `sentinel-${files.length}-${Date.now()}`);
    fs.writeFileSync(sentinel, '');
    const proc = spawn(INOTIFYWAIT, ['-m', '-e', 'open', '--format', '%w', sentinel, ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    const watch = new OpenWatch(proc, sentinel);
    let pending = '';
    proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const file of lines) watch.opens.set(file, watch.count(file) + 1);
    });
    let errors = '';
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => (errors += text));
    await waitUntil(`inotifywait to watch (${errors})`, () => errors.includes('Watches established'));
    return watch;
  }

  private count(file: string): number {
    return this.opens.get(file) ?? 0;
  }

  /**
   * The opens of `file` up to now. We open the sentinel and wait for that to be reported: one inotify
   * queue keeps events in order, so every earlier open of the watched files has been reported too.
   */
  async settled(file: string): Promise<number> {
    const before = this.count(this.sentinel);
    fs.closeSync(fs.openSync(this.sentinel, 'r'));
    await waitUntil('the open of the sentinel to be reported', () => this.count(this.sentinel) > before);
    return this.count(file);
  }

  async stop(): Promise<void> {
    this.proc.kill();
    await once(this.proc, 'exit');
  }
}

/** Writes `text` to `file` and dates it 10 s back: outside the window in which a same-second edit could go unseen. */
function writeSettled(file: string, text: string): void {
  fs.writeFileSync(file, text);
  const past = new Date(Date.now() - 10_000);
  fs.utimesSync(file, past, past);
}

describe('TokenFile re-reads only files that changed', { skip: skipWithout(INOTIFYWAIT) }, () => {
  test('a single file: lookups of an unchanged file do not open it; after an edit the new target is served', async () => {
    assertTools(INOTIFYWAIT);
    const file = path.join(temp.dir, 'tokens.cfg');
    writeSettled(file, `alpha: 127.0.0.1:${targets.a.port}\n`);
    const watch = await OpenWatch.start([file]);
    try {
      const proxy = await proxies.start(['--token-plugin', 'TokenFile', '--token-source', file, '127.0.0.1:0']);
      const atStart = await watch.settled(file);
      assert.ok(atStart >= 1, 'read at start-up');
      for (let i = 0; i < 5; i++) assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.equal(await watch.settled(file), atStart, 'unchanged: not opened by the lookups');
      writeSettled(file, `alpha: 127.0.0.1:${targets.b.port}\n`);
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server B' });
      const afterEdit = await watch.settled(file);
      assert.ok(afterEdit > atStart, 'edited: read again');
      for (let i = 0; i < 3; i++) assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server B' });
      assert.equal(await watch.settled(file), afterEdit, 'unchanged again: not opened');
    } finally {
      await watch.stop();
    }
  });

  test('a directory: only the edited file is read again', async () => {
    assertTools(INOTIFYWAIT);
    const dir = path.join(temp.dir, 'tokens.d');
    fs.mkdirSync(dir);
    const first = path.join(dir, '10-first');
    const second = path.join(dir, '20-second');
    writeSettled(first, `alpha: 127.0.0.1:${targets.a.port}\n`);
    writeSettled(second, `beta: 127.0.0.1:${targets.a.port}\n`);
    const watch = await OpenWatch.start([first, second]);
    try {
      const proxy = await proxies.start(['--token-plugin', 'TokenFile', '--token-source', dir, '127.0.0.1:0']);
      const [firstAtStart, secondAtStart] = [await watch.settled(first), await watch.settled(second)];
      writeSettled(second, `beta: 127.0.0.1:${targets.b.port}\n`);
      assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.equal(await watch.settled(first), firstAtStart, 'the unchanged file is not opened');
      assert.ok((await watch.settled(second)) > secondAtStart, 'the edited file is read again');
    } finally {
      await watch.stop();
    }
  });
});
