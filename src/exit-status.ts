import os from 'node:os';

/**
 * A child process's end as one number, as a shell reports it: its exit code, or 128 + the number of
 * the signal that killed it (143 for SIGTERM). Node's 'exit' event gives one of the two, never both.
 */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}
