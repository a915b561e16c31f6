import path from 'node:path';
import { parseHostPort, parsePort } from '../targets/address.js';
import type { Target } from '../targets/target.js';

/**
 * Parses a target as token sources write it: `host:port`, `[v6]:port`, or Python websockify's
 * `unix_socket:/path/to/socket` for a Unix socket.
 * @throws Error saying what is wrong, for the plugin to report with its own context.
 */
export function parseTargetText(text: string): Target {
  const unix = /^unix_socket:(.+)$/.exec(text);
  if (unix) return unixTarget(unix[1]!);
  if (!text.includes(':')) throw new Error(`expected host:port, got '${text}'`);
  // parseHostPort's UsageError is a plain Error here: its message is what matters.
  return { kind: 'tcp', ...parseHostPort(text, 'target', true) };
}

/**
 * A target from a JSON answer: `{"host": "h", "port": 5900}` (port a number or digits), or, as Python's
 * TokenRedis stores it, `{"host": "h:5900"}`.
 * @throws Error when neither shape fits.
 */
export function parseTargetJson(value: unknown): Target {
  if (typeof value !== 'object' || value === null) throw new Error('expected a JSON object with host and port');
  const { host, port } = value as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || host === '') throw new Error('no "host" string');
  if (port === undefined) return parseTargetText(host);
  if (host === 'unix_socket' && typeof port === 'string') return unixTarget(port);
  if (typeof port !== 'number' && typeof port !== 'string') throw new Error('"port" must be a number');
  return { kind: 'tcp', host: host.replace(/^\[(.*)\]$/, '$1'), port: parsePort(String(port), 'target') };
}

/** A Unix socket target; the path must be absolute, since a daemon's working directory is '/'. */
function unixTarget(socketPath: string): Target {
  if (!path.isAbsolute(socketPath)) throw new Error(`unix_socket path '${socketPath}' is not absolute`);
  return { kind: 'unix', path: socketPath };
}

/** A target written as JSON text (`{"host": "h:p"}` or `{"host": "h", "port": p}`); throws when it is not. */
export function parseTargetJsonText(text: string): Target {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
  return parseTargetJson(value);
}
