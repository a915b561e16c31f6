#!/usr/bin/env node
// Builds the native pieces with the system C compiler ($CC, else cc) into DIR (default dist/native):
// - native/rebind.c into rebind.so, the bind() shim for wrapping a program (`websockify PORT -- PROGRAM`);
// - native/notify.c into notify.node, which sends systemd's readiness notifications (NOTIFY_SOCKET).
// Part of `npm run build`, so `npm install` runs it.
//
// It never fails the install: each is needed by one feature only. When one cannot be built,
// DIR/<name>.missing says why, and that feature fails (or warns) with the reason, which names the
// package to install.
//
// Usage: node scripts/build-native.mjs [DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = resolve(process.argv[2] ?? join(root, 'dist', 'native'));
const compiler = process.env.CC || 'cc';
const PACKAGE_HINT =
  'install a C compiler and the C library headers (Debian/Ubuntu: apt-get install gcc libc6-dev, or build-essential), then run `npm run build`';

/**
 * Compiles native/`source` into DIR/`name`, or writes DIR/`name`.missing with the reason.
 * @param feature what does not work without it, for the warning.
 */
function build(source, name, extraArgs, feature) {
  const output = join(outDir, name);
  const missing = `${output}.missing`;
  // Written beside the final name and renamed over it: a running program keeps the old file mapped, and
  // a test starting a program meanwhile never sees a half-written library.
  const partial = `${output}.${process.pid}.tmp`;
  const result = spawnSync(
    compiler,
    ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', partial, join(root, 'native', source), ...extraArgs],
    { encoding: 'utf8' },
  );
  let reason;
  if (result.error) {
    const code = /** @type {NodeJS.ErrnoException} */ (result.error).code;
    reason =
      code === 'ENOENT'
        ? `no C compiler: '${compiler}' was not found; ${PACKAGE_HINT}`
        : `cannot run the C compiler '${compiler}': ${result.error.message}; ${PACKAGE_HINT}`;
  } else if (result.status !== 0) {
    const text = `${result.stderr}${result.stdout}`.trim().split('\n').slice(0, 5).join(' | ');
    reason = `compiling native/${source} with '${compiler}' failed (${text}); ${PACKAGE_HINT}`;
  }
  if (reason === undefined) {
    renameSync(partial, output);
    rmSync(missing, { force: true });
    console.error(`build-native: built ${output}`);
  } else {
    rmSync(partial, { force: true });
    // A file left from an earlier build would hide the failure behind an old build.
    rmSync(output, { force: true });
    writeFileSync(missing, `${reason}\n`);
    console.error(`build-native: warning: ${name} not built, so ${feature} will not work: ${reason}`);
  }
}

mkdirSync(outDir, { recursive: true });
build('rebind.c', 'rebind.so', ['-ldl'], 'wrapping a program (websockify PORT -- PROGRAM)');
build('notify.c', 'notify.node', [], "systemd's readiness notification (Type=notify)");
