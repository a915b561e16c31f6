import http from 'node:http';
import { StartupError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { openListener } from '../server/listen.js';

/** Where `--metrics-listen` listens. */
export interface MetricsListen {
  /** Default `127.0.0.1` (the metrics say much about the traffic: not for every interface unless asked). */
  host: string;
  /** Port 0: the kernel chooses. */
  port: number;
}

/** What the metrics listener serves. */
export interface MetricsSource {
  /** The metrics in Prometheus's text format, and its content type. */
  collect(): Promise<{ contentType: string; text: string }>;
  /** Whether the proxy takes new sessions: listening, and neither draining nor stopping. */
  ready(): boolean;
}

/** The second listener of `--metrics-listen`, once open. */
export interface MetricsListener {
  /** Where it listens (`host:port`, the kernel's port when 0 was asked for). */
  readonly address: string;
  /** Closes it, and the connections of scrapers that keep theirs alive. */
  close(): Promise<void>;
}

/** How long a request to the metrics listener may take to arrive: scrapers send theirs at once. */
const REQUEST_TIMEOUT_MS = 10_000;

/** A plain-text answer. */
interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** The answer to a request for anything but the metrics: 405 for methods but GET and HEAD, 404 for other paths. */
function plainAnswer(method: string | undefined, path: string, source: MetricsSource): Answer | undefined {
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: `${method} is not allowed\n`, headers: { Allow: 'GET, HEAD' } };
  if (path === '/healthz') return { status: 200, body: 'ok\n' };
  if (path === '/readyz')
    return source.ready() ? { status: 200, body: 'ready\n' } : { status: 503, body: 'not ready: not listening yet, or draining\n' };
  if (path !== '/metrics') return { status: 404, body: 'not found: this listener serves /metrics, /healthz and /readyz\n' };
  return undefined;
}

/** Answers one request: `GET /metrics`, `/healthz`, `/readyz` (Node leaves the body out of a HEAD answer itself). */
function serve(source: MetricsSource, logger: Logger, req: http.IncomingMessage, res: http.ServerResponse): void {
  const send = ({ status, body, headers }: Answer): void => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
    res.end(body);
  };
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const plain = plainAnswer(req.method, query < 0 ? url : url.slice(0, query), source);
  if (plain) {
    send(plain);
    return;
  }
  source.collect().then(
    ({ contentType, text }) => send({ status: 200, body: text, headers: { 'Content-Type': contentType } }),
    (err: Error) => {
      logger.warn({ event: 'metrics-failed', err: err.message }, `collecting the metrics failed: ${err.message}`);
      send({ status: 500, body: `collecting the metrics failed: ${err.message}\n` });
    },
  );
}

/**
 * Opens the `--metrics-listen` listener: Prometheus metrics at `/metrics`, `/healthz` (200 while the
 * process serves) and `/readyz` (200 only while {@link MetricsSource.ready}), for a load balancer to stop
 * sending new sessions before the proxy stops.
 * @throws StartupError naming `--metrics-listen` when the port cannot be opened.
 */
export async function openMetricsListener(listen: MetricsListen, source: MetricsSource, logger: Logger): Promise<MetricsListener> {
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => serve(source, logger, req, res));
  let description: string;
  try {
    ({ description } = await openListener({ kind: 'tcp', ...listen }, false, server));
  } catch (err) {
    throw err instanceof StartupError ? new StartupError(`--metrics-listen: ${err.message}`) : err;
  }
  // After start-up its errors are failed accepts (EMFILE...): worth a line, not a crash.
  server.on('error', (err) => logger.warn({ event: 'metrics-listener-error', err: err.message }, `metrics listener error: ${err.message}`));
  logger.info(
    { event: 'metrics-listening', listen: description },
    `serving metrics on http://${description}/metrics (and /healthz, /readyz)`,
  );
  return {
    address: description,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
