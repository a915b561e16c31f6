// --key-password-file: an encrypted key (made by openssl here) opens with the password read from a
// file, so that it never shows on the command line; a wrong password or a missing file stops the start
// with a line that says which.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cliFixture } from '../helpers/cli-fixture.js';
import { runCli } from '../helpers/proxy.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const PASSWORD = 'correct horse battery';

const cli = cliFixture('key-password', {
  before() {
    fs.writeFileSync(path.join(cli.scratch, 'right'), `${PASSWORD}\n`);
    fs.writeFileSync(path.join(cli.scratch, 'crlf'), `${PASSWORD}\r\n`);
    fs.writeFileSync(path.join(cli.scratch, 'wrong'), 'not the password\n');
  },
});

/** A certificate whose key is encrypted with {@link PASSWORD}. */
function encrypted(): { cert: string; key: string } {
  const issued = cli.pki.issue(`encrypted-${Math.random().toString(36).slice(2)}`, cli.pki.ca, { password: PASSWORD });
  assert.match(fs.readFileSync(issued.key, 'utf8'), /ENCRYPTED PRIVATE KEY/);
  return issued;
}

test('the password from the file (its trailing newline, LF or CRLF, not part of it) opens the key', async () => {
  const { cert, key } = encrypted();
  for (const file of ['right', 'crlf']) {
    const p = await cli.proxy(['--cert', cert, '--key', key, '--key-password-file', path.join(cli.scratch, file), '--ssl-only']);
    try {
      const ws = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
      assert.equal(await echoed(ws, 'through the encrypted key'), 'through the encrypted key');
      ws.close();
      // Nowhere in the process's command line.
      assert.ok(!fs.readFileSync(`/proc/${p.proc.pid}/cmdline`, 'utf8').includes(PASSWORD));
    } finally {
      await cli.stop(p);
    }
  }
});

test('a wrong password in the file, or a missing file, is a start-up error (exit 1) naming the cause', async () => {
  const { cert, key } = encrypted();
  const wrong = await runCli([
    '--cert',
    cert,
    '--key',
    key,
    '--key-password-file',
    path.join(cli.scratch, 'wrong'),
    '127.0.0.1:0',
    '127.0.0.1:1',
  ]);
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(
    wrong.stderr,
    /^websockify: invalid TLS configuration .*: wrong or missing key password \(--key-password or --key-password-file\)$/m,
  );

  const missingFile = path.join(cli.scratch, 'absent');
  const missing = await runCli(['--cert', cert, '--key', key, '--key-password-file', missingFile, '127.0.0.1:0', '127.0.0.1:1']);
  assert.equal(missing.code, 1, missing.stderr);
  assert.equal(missing.stderr, `websockify: cannot read TLS key password file ${missingFile}: no such file\n`);
});

test('--key-password and --key-password-file together are a usage error (exit 2)', async () => {
  const both = await runCli(['--key-password', 'x', '--key-password-file', path.join(cli.scratch, 'right'), '127.0.0.1:0', '127.0.0.1:1']);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /^websockify: error: --key-password and --key-password-file cannot be used together/);
});
