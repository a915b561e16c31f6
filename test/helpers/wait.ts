/**
 * Polls `check` every 20 ms (awaiting it, when it is async) until it gives something other than
 * undefined or false, and resolves with that. For a state that will come (a count reached, a process gone, a file written): the deadline is
 * generous because a busy machine makes a state late, never wrong. Fails naming `what` after `timeoutMs`.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | false | undefined | Promise<T | false | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
