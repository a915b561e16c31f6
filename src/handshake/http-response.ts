import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeAddress, type NetAddress, originOf } from '../client-address/origin.js';
import type { Logger } from '../log/logger.js';
import { printable } from '../log/printable.js';
import { logRefused } from '../log/refusal-log.js';
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
/**
 * The log line of a request refused with an HTTP status (the handshake, or a plain request), naming its
 * real client; at most one per client address per interval (src/log/refusal-log.ts). Counted by
 * `counter` (the metrics, when on) as `kind`, else as its status says; every refusal is counted, logged or not.
 * @param kind the refusal's cause, logged as `kind` when given.
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
  const { client } = originOf(req);
  const where = describeAddress(client);
  logRefused(
    logger,
    client.address ?? where,
    { event: 'refused', client: where, status, reason, ...(kind ? { kind } : {}), path: req.url },
    `refused ${req.method} ${req.url} from ${where}: ${status} ${reason}`,
  );
}

/**
/**
 * The log line of a connection refused before a request was read (`--ssl-only`'s plain connections,
 * PROXY header faults, handshake timeouts, malformed requests, `--max-connections`); at most one per
 * client address per interval (src/log/refusal-log.ts). Counted by `counter` (the metrics, when on).
 * @param options.status the HTTP status answered, if any.
 * @param options.kind the refusal's cause, logged as `kind` and counted.
 */
export function logConnectionRefusal(
  logger: Logger,
  client: NetAddress,
  reason: string,
  options: { status?: number | undefined; kind: RefusalReason; counter?: RefusalCounter | undefined; message?: string | undefined },
): void {
  const { status, kind } = options;
  options.counter?.(status, kind);
  const where = describeAddress(client);
  logRefused(
    logger,
    client.address ?? where,
    { event: 'refused', client: where, ...(status ? { status } : {}), reason, kind },
    options.message ?? `refused a connection from ${where}: ${status ? `${status} ` : ''}${reason}`,
  );
}
