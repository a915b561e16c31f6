#!/usr/bin/env node
// Builds the bind() shim native/rebind.c into DIR/rebind.so (default dist/native) with the system C
// compiler ($CC, else cc). Part of `npm run build`, so `npm install` runs it.
//
// It never fails the install: only wrapping a program (`websockify PORT -- PROGRAM`) needs the shim.
// When it cannot be built, DIR/rebind.so.missing says why, and wrapping fails with that reason, which
// names the package to install.
//
// Usage: node scripts/build-native.mjs [DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(root, 'native', 'rebind.c');
const outDir = resolve(process.argv[2] ?? join(root, 'dist', 'native'));
const output = join(outDir, 'rebind.so');
const missing = `${output}.missing`;
const compiler = process.env.CC || 'cc';
const PACKAGE_HINT =
  'install a C compiler and the C library headers (Debian/Ubuntu: apt-get install gcc libc6-dev, or build-essential), then run `npm run build`';

mkdirSync(outDir, { recursive: true });
// Written beside the final name and renamed over it: a running program keeps the old file mapped, and
// a test starting a program meanwhile never sees a half-written library.
const partial = `${output}.${process.pid}.tmp`;
const result = spawnSync(compiler, ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', partial, source, '-ldl'], { encoding: 'utf8' });

let reason;
if (result.error) {
  const code = /** @type {NodeJS.ErrnoException} */ (result.error).code;
  reason =
    code === 'ENOENT'
      ? `no C compiler: '${compiler}' was not found; ${PACKAGE_HINT}`
      : `cannot run the C compiler '${compiler}': ${result.error.message}; ${PACKAGE_HINT}`;
} else if (result.status !== 0) {
  const output = `${result.stderr}${result.stdout}`.trim().split('\n').slice(0, 5).join(' | ');
  reason = `compiling native/rebind.c with '${compiler}' failed (${output}); ${PACKAGE_HINT}`;
}

if (reason === undefined) {
  renameSync(partial, output);
  rmSync(missing, { force: true });
  console.error(`build-native: built ${output}`);
} else {
  rmSync(partial, { force: true });
  // A library left from an earlier build would hide the failure behind an old shim.
  rmSync(output, { force: true });
  writeFileSync(missing, `${reason}\n`);
  console.error(`build-native: warning: rebind.so not built, so wrapping a program (websockify PORT -- PROGRAM) will not work: ${reason}`);
}
