/**
 * Errors that carry the answer they map to, so each stage of a connection can fail in one line
 * and the stage that catches the error knows what to tell the client.
 */

/** A failure before the WebSocket upgrade, answered with an HTTP status and a short reason. */
export class HttpError extends Error {
  /**
   * @param status HTTP status code sent to the client.
   * @param message Reason, sent as the response body and logged.
   * @param headers Extra response headers (for example `Allow` or `WWW-Authenticate`).
   * @param kind A short, fixed name of the refusal's cause for logs and counters (`limit`, `rate`, `ban`,
   *   `origin`, `auth`, `token`), or undefined; never client-supplied text.
   */
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly kind?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A bad command line: the CLI prints the message and the usage hint, then exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure to start (port in use, permission denied): one clear line, exit 1. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/**
 * Common system errors in words, for messages that name the file or address themselves: Node's own
 * message would repeat the path ("ENOENT: no such file or directory, open '/x'").
 */
const SYSTEM_ERROR_WORDS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'it is a directory',
  EROFS: 'read-only file system',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  EAFNOSUPPORT: 'address family not supported on this machine',
  ENOTSOCK: 'not a socket',
  ENOTFOUND: 'no such host name',
  EAI_AGAIN: 'host name lookup failed (temporary failure)',
};

/**
 * Why a system call failed, in a few words (its message when the code has none), to follow a message
 * that says what was being done to what: "cannot open log file /x: permission denied".
 * @param options.creating the call was creating the path (a log file, a socket), so a missing path is a
 * missing directory; otherwise it is the file itself.
 */
export function systemErrorText(err: unknown, options: { creating?: boolean } = {}): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return options.creating ? 'no such directory' : 'no such file';
  return (code !== undefined && SYSTEM_ERROR_WORDS[code]) || ((err as Error | undefined)?.message ?? String(err));
}
