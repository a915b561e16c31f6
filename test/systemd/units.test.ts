// The unit files shipped in systemd/ pass `systemd-analyze verify` (systemd 252 here) with no warning:
// every key known, the socket the service requires found. systemd-analyze checks that ExecStart's
// program exists, so the copies verified run the CLI built here instead of /usr/local/bin/websockify;
// nothing else is changed. (The container has no systemd as PID 1: the proxy's side of socket
// activation and of the notifications is tested in test/service/.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/proxy.js';
import { assertTools, skipWithout } from '../helpers/tools.js';

const ANALYZE = '/usr/bin/systemd-analyze';
const UNITS = fileURLToPath(new URL('../../../systemd/', import.meta.url));
const INSTALLED = 'ExecStart=/usr/local/bin/websockify ';

/** Copies the shipped units into a new directory, `edit` applied to the service's text. */
function copyUnits(edit: (service: string) => string = (text) => text): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-units-'));
  fs.copyFileSync(path.join(UNITS, 'websockify@.socket'), path.join(dir, 'websockify@.socket'));
  const service = fs.readFileSync(path.join(UNITS, 'websockify@.service'), 'utf8');
  assert.ok(service.includes(INSTALLED), 'the service runs the installed command');
  fs.writeFileSync(path.join(dir, 'websockify@.service'), edit(service.replace(INSTALLED, `ExecStart=${CLI} `)));
  return dir;
}

/** `systemd-analyze verify` of instance 6080 of both units in `dir`. */
function verify(dir: string): { status: number | null; output: string } {
  const result = spawnSync(ANALYZE, ['verify', path.join(dir, 'websockify@6080.service'), path.join(dir, 'websockify@6080.socket')], {
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test('systemd-analyze verify passes the shipped units without a warning', { skip: skipWithout(ANALYZE) }, () => {
  assertTools(ANALYZE);
  const dir = copyUnits();
  try {
    assert.deepEqual(verify(dir), { status: 0, output: '' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the check can fail: a misspelt key is reported', { skip: skipWithout(ANALYZE) }, () => {
  assertTools(ANALYZE);
  const dir = copyUnits((text) => text.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  try {
    assert.match(verify(dir).output, /Unknown key 'NoNewPrivilege' in section \[Service\]/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
