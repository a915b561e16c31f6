import fs from 'node:fs';
import type { ClientOptions as WsClientOptions } from 'ws';
import { DEFAULTS } from '../config.js';
import { StartupError, systemErrorText, UsageError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Options of {@link connectToWebSocket} (and of each session of `websockify-client`). */
export interface ClientOptions {
  /**
   * The subprotocol to ask for: `binary` (binary frames) or `base64` (text frames of base64, for old
   * servers). Default: offer both, binary first, and use whichever the server picks.
   */
  protocol?: 'binary' | 'base64' | undefined;
  /** Extra request headers (`--header`): a record, or `Name: value` lines. Default none. */
  headers?: Readonly<Record<string, string>> | readonly string[] | undefined;
  /** The `Origin` header (`--origin`). Default none. */
  origin?: string | undefined;
  /** Authorities to trust for a `wss://` server, PEM (`--cafile`). Default: the system trust store. */
  ca?: string | Buffer | undefined;
  /** Accept any server certificate (`--insecure`). Default false. */
  insecure?: boolean | undefined;
  /** Client certificate, PEM, for servers that ask for one (`--cert`); may also hold the key. */
  cert?: string | Buffer | undefined;
  /** The client certificate's private key, PEM (`--key`). Default: taken from `cert`. */
  key?: string | Buffer | undefined;
  /** Give up opening the WebSocket (TCP, TLS and HTTP upgrade) after this many seconds; 0: never. Default 10. */
  connectTimeout?: number | undefined;
  /** Ping the server every this many seconds and drop the session when a pong is missing by the next; 0: off. Default 0. */
  heartbeat?: number | undefined;
  /** Largest message accepted from the server, in bytes. Default 16 MiB (the proxy's `--max-message-size`). */
  maxMessageSize?: number | undefined;
  /** Where the session logs its opening failure, unusual close codes and its summary. Default: nowhere. */
  logger?: Logger | undefined;
}

/** {@link ClientOptions} checked, in the form the session uses. */
export interface ResolvedClientOptions {
  url: URL;
  /** The subprotocols offered, in order of preference. */
  protocols: string[];
  /** Options for `ws`'s client. */
  ws: WsClientOptions;
  heartbeatMs: number;
  logger: Logger | undefined;
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Parses `Name: value` as `--header` takes it.
 * @throws UsageError for a line without a colon or with a name that is not an HTTP token.
 */
export function parseHeaderLine(line: string): [string, string] {
  const colon = line.indexOf(':');
  const name = colon < 0 ? '' : line.slice(0, colon).trim();
  if (!TOKEN.test(name)) throw new UsageError(`--header: expected 'Name: value', got '${line}'`);
  const value = line.slice(colon + 1).trim();
  // A line break would let the value smuggle further headers into the request.
  if (/[\r\n\0]/.test(value)) throw new UsageError(`--header ${name}: the value may not hold line breaks`);
  return [name, value];
}

function secondsOption(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${name}: expected a number of seconds (0 or more), got ${value}`);
  return value;
}

/**
 * Checks `url` and `options`.
 * @throws UsageError naming the problem: not a ws:// or wss:// URL, a bad header, TLS options on ws://.
 */
export function resolveClientOptions(url: string | URL, options: ClientOptions = {}): ResolvedClientOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid URL '${String(url)}': expected ws://host[:port]/path or wss://...`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new UsageError(`unsupported URL scheme '${parsed.protocol}' in '${String(url)}': expected ws:// or wss://`);
  }
  if (parsed.hash) throw new UsageError(`the URL may not have a fragment (#${parsed.hash.slice(1)}): WebSocket URLs have none`);
  const tlsGiven = ['ca', 'cert', 'key', 'insecure'].filter((name) => options[name as keyof ClientOptions]);
  if (parsed.protocol === 'ws:' && tlsGiven.length > 0) {
    throw new UsageError(`${tlsGiven.map((name) => `--${name === 'ca' ? 'cafile' : name}`).join(', ')} need a wss:// URL`);
  }
  if (options.key && !options.cert) throw new UsageError('--key needs --cert (the certificate it belongs to)');
  if (options.protocol !== undefined && options.protocol !== 'binary' && options.protocol !== 'base64') {
    throw new UsageError(`--protocol: expected binary or base64, got '${String(options.protocol)}'`);
  }
  const headers: Record<string, string> = {};
  const given = options.headers ?? [];
  const entries = Array.isArray(given)
    ? (given as readonly string[]).map(parseHeaderLine)
    : Object.entries(given as Record<string, string>).map(([name, value]) => parseHeaderLine(`${name}: ${value}`));
  for (const [name, value] of entries) {
    // Repeated names are joined as HTTP allows (Cookie with '; ', the others with ', ').
    const previous = Object.keys(headers).find((known) => known.toLowerCase() === name.toLowerCase());
    if (previous) headers[previous] += `${name.toLowerCase() === 'cookie' ? '; ' : ', '}${value}`;
    else headers[name] = value;
  }
  const connectTimeout = secondsOption(options.connectTimeout, '--connect-timeout', DEFAULTS.connectTimeout);
  const heartbeat = secondsOption(options.heartbeat, '--heartbeat', 0);
  const maxMessageSize = options.maxMessageSize ?? DEFAULTS.maxMessageSize;
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 1)
    throw new UsageError(`maxMessageSize: expected a positive whole number of bytes`);
  const ws: WsClientOptions = {
    perMessageDeflate: false,
    maxPayload: maxMessageSize,
    headers,
    // ws follows no redirects by default: a proxy's 3xx is an answer to report, not a place to go.
    ...(options.origin !== undefined && { origin: options.origin }),
    ...(connectTimeout > 0 && { handshakeTimeout: connectTimeout * 1000 }),
    ...(options.ca !== undefined && { ca: options.ca }),
    ...(options.cert !== undefined && { cert: options.cert, key: options.key ?? options.cert }),
    ...(options.insecure && { rejectUnauthorized: false }),
  };
  return {
    url: parsed,
    protocols: options.protocol ? [options.protocol] : ['binary', 'base64'],
    ws,
    heartbeatMs: heartbeat * 1000,
    logger: options.logger,
  };
}

/**
 * Reads a PEM file named on the command line (`--cafile`, `--cert`, `--key`).
 * @throws StartupError saying which file and why.
 */
export function readPemFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new StartupError(`cannot read ${what} ${file}: ${systemErrorText(err)}`);
  }
}
