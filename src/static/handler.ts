import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { join, relative, resolve, sep } from 'node:path';
import send from 'send';
import { clientOf } from '../client-address/origin.js';
import { HttpError, StartupError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { printable } from '../log/printable.js';
import { readListing, renderListing } from './listing.js';
import { encodeSegments, parseRequestPath } from './request-path.js';

/** Options for {@link createWebHandler}. */
export interface WebOptions {
  /** The directory served (`--web DIR`). */
  root: string;
  /** Answer 404 instead of listing a directory that has no index.html (`--file-only`). */
  fileOnly: boolean;
  /** Receives one `web` line per request, at info level. */
  logger: Logger;
}

/** A request handler for node:http's 'request' event. */
export type WebHandler = (req: IncomingMessage, res: ServerResponse) => void;

const ALLOW = 'GET, HEAD';

/** Why a request failed, for its log line. */
const reasons = new WeakMap<ServerResponse, string>();

/**
 * Creates the static file server for `--web DIR`: GET and HEAD of files under the root, with Content-Type,
 * ranges and conditional requests (through `send`); a directory serves its index.html, else a listing
 * (404 under `fileOnly`). Paths are checked segment by segment, then the real path (symbolic links
 * resolved) must lie inside the root's real path. Logs one `web` line per request; never throws.
 * @throws StartupError when `root` is not a readable directory.
 */
export function createWebHandler(options: WebOptions): WebHandler {
  const root = realRoot(options.root);
  const inside = root.endsWith(sep) ? root : root + sep;
  const contained = (path: string): boolean => path === root || path.startsWith(inside);
  const { logger, fileOnly } = options;

  /** The real path of `path` if it exists inside the root; 403 when a link leads out. */
  const resolveInside = async (path: string): Promise<string> => {
    const real = await realpath(path);
    if (!contained(real)) throw new HttpError(403, 'the path leads outside the web root');
    return real;
  };

  const sendFile = (req: IncomingMessage, res: ServerResponse, file: string): void => {
    // Handed over URL-encoded and relative to `root`, so send's own `..` check guards it once more.
    const encoded = encodeSegments(relative(root, file).split(sep), false);
    send(req, encoded, { root, index: false, dotfiles: 'allow' })
      .on('error', (err) => {
        if (res.headersSent) return fail(res, err);
        const status = err.status ?? err.statusCode ?? 500;
        // send's messages name the absolute path: the client gets the status text only.
        fail(res, new HttpError(status, (STATUS_CODES[status] ?? 'error').toLowerCase(), err.headers));
      })
      // The file became a directory since it was checked.
      .on('directory', () => fail(res, new HttpError(404, 'not found')))
      .pipe(res);
  };

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not allowed`, { Allow: ALLOW });
    const target = parseRequestPath(req.url ?? '');
    const real = await resolveInside(join(root, ...target.segments));
    const info = await stat(real);
    if (info.isFile()) {
      if (target.trailingSlash) throw new HttpError(404, 'not a directory');
      return sendFile(req, res, real);
    }
    // FIFOs, sockets and devices are never opened: reading one could block or never end.
    if (!info.isDirectory()) throw new HttpError(404, 'not a regular file');
    if (!target.trailingSlash && target.segments.length > 0) {
      // Relative links in the page resolve against the directory only with the slash. The location is
      // rebuilt from the checked segments: it cannot start with `//` (an open redirect).
      const location = encodeSegments(target.segments, true) + target.query;
      return answer(req, res, 301, 'text/plain; charset=utf-8', `moved to ${location}\n`, { Location: location });
    }
    const index = await resolveInside(join(real, 'index.html')).then(
      async (file) => ((await stat(file)).isFile() ? file : undefined),
      () => undefined,
    );
    if (index) return sendFile(req, res, index);
    if (fileOnly) throw new HttpError(404, 'directory listing is disabled (--file-only)');
    const urlPath = target.segments.length === 0 ? '/' : `/${target.segments.join('/')}/`;
    answer(req, res, 200, 'text/html; charset=utf-8', renderListing(urlPath, await readListing(real)));
  };

  return (req, res) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const status = res.statusCode;
      const aborted = !res.writableFinished;
      const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
      const client = clientOf(req);
      logger.info(
        {
          event: 'web',
          client,
          method: req.method,
          path: req.url,
          status,
          ms,
          ...(aborted ? { aborted } : {}),
          ...(reasons.has(res) ? { reason: reasons.get(res) } : {}),
        },
        `web ${req.method} ${req.url} ${status}${aborted ? ' (aborted)' : ''} from ${client}`,
      );
    });
    // A write to a response whose client has gone may emit 'error'; unheard, it would end the process.
    res.on('error', (err) => reasons.set(res, `response error: ${err.message}`));
    serve(req, res).catch((err: unknown) => fail(res, err));
  };
}

/** The web root's real path, checked once at start-up. */
function realRoot(root: string): string {
  try {
    const real = realpathSync(resolve(root));
    if (!statSync(real).isDirectory()) throw new Error('not a directory');
    accessSync(real, constants.R_OK | constants.X_OK);
    return real;
  } catch (err) {
    throw new StartupError(`--web ${root}: not a readable directory (${(err as Error).message})`);
  }
}

/** Answers a whole response (no body for HEAD) with its length. */
function answer(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Answers a failure with a short plain-text status; a response already under way can only be cut, so that
 * the client sees a truncated transfer rather than a complete-looking one.
 */
function fail(res: ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed) {
    reasons.set(res, `failed mid-transfer: ${(err as Error).message}`);
    res.destroy();
    return;
  }
  const error = err instanceof HttpError ? err : fromErrno(err as NodeJS.ErrnoException);
  reasons.set(res, error.message);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const body = `${error.status} ${STATUS_CODES[error.status] ?? 'Error'}: ${printable(error.message)}\n`;
  res.writeHead(error.status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    ...error.headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** The answer to a file system error: the reason names the error code, never the path. */
function fromErrno(err: NodeJS.ErrnoException): HttpError {
  switch (err.code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
    case 'ELOOP':
      return new HttpError(404, 'not found');
    case 'EACCES':
    case 'EPERM':
      return new HttpError(403, 'permission denied');
    default:
      return new HttpError(500, `cannot read the file (${err.code ?? 'error'})`);
  }
}
