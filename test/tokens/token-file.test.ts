// Token files through the real CLI: tokens routed to real TCP servers that answer differently, edits on
// disk applied to the next connection, comments, IPv6, directories, malformed lines reported by number.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import type { TestServer } from '../helpers/targets.js';
import { attempt, startNamedServer, tempDir } from './support.js';

let a: TestServer;
let b: TestServer;
let six: TestServer;
const temp = tempDir();

before(async () => {
  [a, b, six] = await Promise.all([startNamedServer('server A'), startNamedServer('server B'), startNamedServer('server six', '::1')]);
});
after(async () => {
  await Promise.all([a.close(), b.close(), six.close()]);
  temp.remove();
});

/** The line numbers of the malformed lines reported for `file`. */
function reportedLines(proxy: RunningProxy, file: string): number[] {
  return proxy
    .events()
    .filter((e) => e.event === 'token-file-error' && e.file === file)
    .map((e) => e.line as number)
    .sort((x, y) => x - y);
}

describe('TokenFile (a single file)', () => {
  let proxy: RunningProxy;
  let file: string;

  before(async () => {
    file = path.join(temp.dir, 'tokens.cfg');
    fs.writeFileSync(
      file,
      [
        '# tokens for the test', // 1
        '', // 2
        `alpha: 127.0.0.1:${a.port}`, // 3
        `beta:   127.0.0.1:${b.port}   `, // 4
        'no separator here', // 5: malformed
        `six: [::1]:${six.port}`, // 6
        'noport: 127.0.0.1', // 7: malformed
        '   # an indented comment', // 8
        'badport: 127.0.0.1:99999', // 9: malformed
        `: 127.0.0.1:${a.port}`, // 10: malformed (no token)
      ].join('\n'),
    );
    proxy = await startProxy(['--token-plugin', 'TokenFile', '--token-source', file, '127.0.0.1:0']);
  });
  after(async () => {
    await proxy.stop();
  });

  test('each token reaches its own target, on any path, IPv6 included', async () => {
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${proxy.url}/websockify?token=beta`), { status: 101, said: 'server B' });
    assert.deepEqual(await attempt(`${proxy.url}/some/path?x=1&token=six`), { status: 101, said: 'server six' });
  });

  test('every malformed line is reported with its file and line number; the comments are not', async () => {
    assert.deepEqual(reportedLines(proxy, file), [5, 7, 9, 10]);
    const line9 = proxy.events().find((e) => e.event === 'token-file-error' && e.line === 9);
    assert.match(String(line9?.msg), /line 9: .*invalid port '99999'/);
  });

  test('a missing token gets 404 with a reason, and a log line', async () => {
    const outcome = await attempt(`${proxy.url}/websockify`);
    assert.equal(outcome.status, 404);
    assert.match((outcome as { body: string }).body, /missing token/);
    await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 404 && /missing token/.test(String(e.reason)));
  });

  test('an unknown token gets 404 naming it, and a log line', async () => {
    const outcome = await attempt(`${proxy.url}/?token=gamma`);
    assert.equal(outcome.status, 404);
    assert.match((outcome as { body: string }).body, /unknown token 'gamma'/);
    await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 404 && /gamma/.test(String(e.reason)));
  });

  test('an edit to the file applies to the next connection, without a restart', async () => {
    const original = fs.readFileSync(file, 'utf8');
    // Swapped targets, one token added, one removed; written in place as an editor would.
    fs.writeFileSync(file, `alpha: 127.0.0.1:${b.port}\ngamma: 127.0.0.1:${a.port}\n`);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server B' });
      assert.deepEqual(await attempt(`${proxy.url}/?token=gamma`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${proxy.url}/?token=beta`)).status, 404);
      // Replaced by rename (a new inode), as many tools write.
      fs.writeFileSync(`${file}.new`, `beta: 127.0.0.1:${a.port}\nbroken\n`);
      fs.renameSync(`${file}.new`, file);
      assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${proxy.url}/?token=alpha`)).status, 404);
      await proxy.waitForEvent((e) => e.event === 'token-file-error' && e.file === file && e.line === 2);
    } finally {
      fs.writeFileSync(file, original);
    }
  });
});

describe('TokenFile (a directory of files)', () => {
  let proxy: RunningProxy;
  let dir: string;

  before(async () => {
    dir = path.join(temp.dir, 'tokens.d');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'one.cfg'), `alpha: 127.0.0.1:${a.port}\n`);
    fs.writeFileSync(path.join(dir, 'two.cfg'), `# second file\nbeta: 127.0.0.1:${b.port}\nnot a line\n`);
    // An editor's swap file is not a token file.
    fs.writeFileSync(path.join(dir, '.two.cfg.swp'), `hidden: 127.0.0.1:${a.port}\n`);
    proxy = await startProxy(['--token-plugin', 'TokenFile', '--token-source', dir, '127.0.0.1:0']);
  });
  after(async () => {
    await proxy.stop();
  });

  test('tokens from every file; hidden files skipped; a malformed line reported with its own file', async () => {
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
    assert.equal((await attempt(`${proxy.url}/?token=hidden`)).status, 404);
    assert.deepEqual(reportedLines(proxy, path.join(dir, 'two.cfg')), [3]);
    assert.deepEqual(reportedLines(proxy, path.join(dir, 'one.cfg')), []);
  });

  test('a file added to the directory, and one removed, apply to the next connection', async () => {
    fs.writeFileSync(path.join(dir, 'three.cfg'), `six: [::1]:${six.port}\n`);
    assert.deepEqual(await attempt(`${proxy.url}/?token=six`), { status: 101, said: 'server six' });
    fs.rmSync(path.join(dir, 'one.cfg'));
    assert.equal((await attempt(`${proxy.url}/?token=alpha`)).status, 404);
    assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
  });
});

describe('ReadOnlyTokenFile and --target-config', () => {
  test('ReadOnlyTokenFile reads the file once: later edits do not apply', async () => {
    const file = path.join(temp.dir, 'readonly.cfg');
    fs.writeFileSync(file, `alpha: 127.0.0.1:${a.port}\n`);
    const proxy = await startProxy(['--token-plugin', 'ReadOnlyTokenFile', '--token-source', file, '127.0.0.1:0']);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      fs.writeFileSync(file, `alpha: 127.0.0.1:${b.port}\nbeta: 127.0.0.1:${b.port}\n`);
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${proxy.url}/?token=beta`)).status, 404);
    } finally {
      await proxy.stop();
    }
  });

  test('--target-config FILE, the deprecated spelling, is TokenFile; --host-token takes the token from Host', async () => {
    const file = path.join(temp.dir, 'target-config.cfg');
    fs.writeFileSync(file, `vnc1.example: 127.0.0.1:${a.port}\nvnc2.example: 127.0.0.1:${b.port}\n`);
    const proxy = await startProxy(['--target-config', file, '--host-token', '127.0.0.1:0']);
    try {
      assert.match(String(proxy.events().find((e) => e.event === 'listening')?.msg), /TokenFile, token from the Host header/);
      assert.deepEqual(await attempt(proxy.url, { Host: 'vnc1.example:6080' }), { status: 101, said: 'server A' });
      assert.deepEqual(await attempt(`${proxy.url}/?token=vnc1.example`, { Host: 'vnc2.example' }), { status: 101, said: 'server B' });
      assert.equal((await attempt(proxy.url, { Host: 'other.example' })).status, 404);
    } finally {
      await proxy.stop();
    }
  });
});

describe('TokenFileName', () => {
  test('a file named by the token holds host:port; names that would leave the directory are unknown', async () => {
    const dir = path.join(temp.dir, 'by-name');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'alpha'), `127.0.0.1:${a.port}\n`);
    fs.writeFileSync(path.join(temp.dir, 'outside'), `127.0.0.1:${b.port}\n`);
    fs.writeFileSync(path.join(dir, 'garbled'), 'not an address\n');
    const proxy = await startProxy(['--token-plugin', 'TokenFileName', '--token-source', dir, '127.0.0.1:0']);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${proxy.url}/?token=${encodeURIComponent('../outside')}`)).status, 404);
      assert.equal((await attempt(`${proxy.url}/?token=beta`)).status, 404);
      fs.writeFileSync(path.join(dir, 'beta'), `[::1]:${six.port}`);
      assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server six' });
      // A malformed entry is the source's fault: 503, and the file named in the log.
      assert.equal((await attempt(`${proxy.url}/?token=garbled`)).status, 503);
      await proxy.waitForEvent((e) => e.event === 'token-file-error' && e.file === path.join(dir, 'garbled'));
    } finally {
      await proxy.stop();
    }
  });
});
