import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuthPlugin, AuthRequest } from '../auth/plugin.js';
import { HttpError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { type TokenPlugin, TokenSourceError } from '../tokens/plugin.js';

/** Decides, before the upgrade, whether a handshake may pass and where it goes. */
export type Admission = (req: IncomingMessage) => Promise<Target>;

/**
 * What the route stage is made of; every part is optional but a target or a token plugin.
 * `--allow-target` wraps the resulting admission (see `guardAdmission` in route/policy.ts).
 */
export interface AdmissionOptions {
  /** The fixed target (command line, or a wrapped program). */
  target?: Target | undefined;
  /** Resolve each connection's target from its token. */
  tokens?: { plugin: TokenPlugin; fromHost: boolean } | undefined;
  /** Access control, before any token lookup. */
  auth?: AuthPlugin | undefined;
}

/** The request as auth plugins see it. */
export function authRequestOf(req: IncomingMessage): AuthRequest {
  const socket = req.socket as Partial<TLSSocket>;
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
    peerCertificate: socket.authorized ? (socket.getPeerX509Certificate?.() ?? undefined) : undefined,
  };
}

/**
 * The token of a request: the `token` query parameter on any path, or with `fromHost` the Host header
 * without its port (`[v6]:port` handled).
 */
export function tokenOf(req: IncomingMessage, fromHost: boolean): string | undefined {
  if (!fromHost) return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
  const host = req.headers.host;
  if (!host) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1];
  return host.replace(/:\d+$/, '');
}

/**
 * Composes the route stage: auth, then the target (fixed, or looked up by token). Each refusal is an
 * HttpError the upgrade stage answers and logs: 401/403 from auth, 404 for a missing or unknown token,
 * 503 when the token source is down.
 */
export function createAdmission(options: AdmissionOptions): Admission {
  return async (req) => {
    if (options.auth) await options.auth.authenticate(authRequestOf(req));
    let target: Target;
    if (options.tokens) {
      const token = tokenOf(req, options.tokens.fromHost);
      if (!token)
        throw new HttpError(
          404,
          options.tokens.fromHost ? 'no Host header to take the token from' : 'missing token (add ?token=... to the URL)',
        );
      let found: Target | undefined;
      try {
        found = await options.tokens.plugin.lookup(token);
      } catch (err) {
        if (err instanceof TokenSourceError) throw new HttpError(503, `token source unavailable: ${err.message}`);
        throw err;
      }
      if (!found) throw new HttpError(404, `unknown token '${token}'`);
      target = found;
    } else if (options.target) {
      target = options.target;
    } else {
      throw new HttpError(500, 'no target configured');
    }
    return target;
  };
}
