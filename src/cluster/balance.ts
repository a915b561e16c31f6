import type { ListenSpec } from '../config.js';

/**
 * How connections reach the workers: each worker's own SO_REUSEPORT socket on the port, the kernel
 * choosing by connection hash; or node:cluster's round robin, the primary accepting and handing each
 * socket to the next worker.
 */
export type Balance = 'reuse-port' | 'round-robin';

/** Chooses the balance for measurements (docs/PERFORMANCE.md); unset = {@link chooseBalance}'s default. */
export const BALANCE_VARIABLE = 'WEBSOCKIFY_WORKER_BALANCE';

/** Whether this Node can listen with `reusePort`: 22.12 and later 22.x, 23.1 and later (Linux). */
export function reusePortAvailable(version = process.versions.node, platform = process.platform): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return platform === 'linux' && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12));
}

/**
 * The balance for `listen`: SO_REUSEPORT for TCP where Node has it, else round robin (the only one for
 * a Unix socket). {@link BALANCE_VARIABLE} may ask for round robin, or for SO_REUSEPORT where possible.
 */
export function chooseBalance(listen: ListenSpec, env: NodeJS.ProcessEnv = process.env): Balance {
  const possible = listen.kind === 'tcp' && reusePortAvailable();
  const asked = env[BALANCE_VARIABLE];
  if (asked === 'round-robin') return asked;
  return possible ? 'reuse-port' : 'round-robin';
}
