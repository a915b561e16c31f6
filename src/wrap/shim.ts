import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StartupError } from '../errors.js';

/** Where scripts/build-native.mjs puts the bind() shim: dist/native/, beside the compiled dist/src/. */
const SHIM = fileURLToPath(new URL('../../native/rebind.so', import.meta.url));

/**
 * The path of the built bind() shim (native/rebind.c).
 * @throws StartupError when it was not built, with the build's reason (which names the package to
 * install), or when its path cannot be carried by LD_PRELOAD.
 */
export function locateShim(): string {
  if (!fs.existsSync(SHIM)) {
    let reason: string;
    try {
      reason = fs.readFileSync(`${SHIM}.missing`, 'utf8').trim();
    } catch {
      reason = `${SHIM} does not exist; run \`npm run build\`, which needs a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev, or build-essential)`;
    }
    throw new StartupError(`cannot wrap a program: the bind() shim rebind.so was not built: ${reason}`);
  }
  // The dynamic loader splits LD_PRELOAD on both.
  if (/[ :]/.test(SHIM))
    throw new StartupError(
      `cannot wrap a program: LD_PRELOAD cannot name ${SHIM} (a space or colon in the path); install websockify-ts elsewhere`,
    );
  return SHIM;
}

/** How the shim should move the program's port. */
export interface ShimSettings {
  /** The port the program binds. */
  oldPort: number;
  /** The loopback port its bind goes to instead. */
  newPort: number;
  /** The pid of the process starting the program: the program gets SIGTERM when it dies. */
  parentPid: number;
}

/**
 * The environment a program runs with under the shim: `base` plus the shim in front of any
 * `LD_PRELOAD` already set (so that its bind() is the one called first), and the shim's settings.
 */
export function shimEnvironment(base: NodeJS.ProcessEnv, shim: string, settings: ShimSettings): NodeJS.ProcessEnv {
  const preload = base.LD_PRELOAD?.trim();
  return {
    ...base,
    LD_PRELOAD: preload ? `${shim}:${preload}` : shim,
    REBIND_OLD_PORT: String(settings.oldPort),
    REBIND_NEW_PORT: String(settings.newPort),
    REBIND_PARENT_PID: String(settings.parentPid),
  };
}
