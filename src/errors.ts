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
   */
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
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
