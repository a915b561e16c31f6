import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { clientOf } from '../client-address/origin.js';
import type { Logger } from '../log/logger.js';
import { printable } from '../log/printable.js';
import { type RefusalCounter, type RefusalReason, reasonForStatus } from '../metrics/refusals.js';

/**
 * Answers on a raw socket (outside node:http's response object: before an upgrade, or for a request the
 * parser rejected) with a status, a plain-text reason, and `Connection: close`, then ends the socket.
 */
export function writeHttpError(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // The reason may quote the client (a token, a header): one line, no control characters.
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${printable(reason)}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // A client that never reads must not keep the socket alive.
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** Answers a parsed request with a status and a plain-text reason, and closes the connection after it. */
export function answerRequest(res: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...headers });
  res.end(`${status} ${printable(reason)}\n`);
}

/**
 * One log line per request refused with an HTTP status (the handshake, or a plain request), naming its
 * real client; counted by `counter` (the metrics, when on) as `kind`, else as its status says.
 */
export function logRefusal(
  logger: Logger,
  req: IncomingMessage,
  status: number,
  reason: string,
  kind?: RefusalReason,
  counter?: RefusalCounter,
): void {
  counter?.(status, kind ?? reasonForStatus(status));
  const client = clientOf(req);
  logger.info(
    { event: 'refused', client, status, reason, path: req.url },
    `refused ${req.method} ${req.url} from ${client}: ${status} ${reason}`,
  );
}

/**
 * One log line per connection refused before any request could be read, and so closed unanswered
 * (`--ssl-only`'s plain connections, unexpected or missing PROXY headers); counted by `counter` as `kind`.
 */
export function logConnectionRefusal(logger: Logger, client: string, reason: string, kind: RefusalReason, counter?: RefusalCounter): void {
  counter?.(undefined, kind);
  logger.info({ event: 'refused', client, reason }, `refused a connection from ${client}: ${reason}`);
}
