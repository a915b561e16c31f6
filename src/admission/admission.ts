import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuthPlugin, AuthRequest } from '../auth/plugin.js';
import { originOf } from '../client-address/origin.js';
import { HttpError } from '../errors.js';
import type { Target } from '../targets/target.js';
import type { TargetSource } from './target-source.js';

/** Decides, before the upgrade, whether a handshake may pass and where it goes. */
export type Admission = (req: IncomingMessage) => Promise<Target>;

/** What the route stage is made of. `--allow-target` wraps the resulting admission (see `guardAdmission` in policy.ts). */
export interface AdmissionOptions {
  /** Where admitted handshakes go: a fixed target, a token plugin, a wrapped program. */
  targets: TargetSource;
  /** Access control, before any token lookup. */
  auth?: AuthPlugin | undefined;
}

/** The request as auth plugins see it. */
export function authRequestOf(req: IncomingMessage): AuthRequest {
  const socket = req.socket as Partial<TLSSocket>;
  const origin = originOf(req);
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: origin.client.address,
    peerAddress: origin.peer.address,
    peerCertificate: socket.authorized ? (socket.getPeerX509Certificate?.() ?? undefined) : undefined,
  };
}

/**
 * Composes the route stage: auth, then the target. Each refusal is an HttpError the upgrade stage
 * answers and logs: 401/403 from auth, the target source's own (404, 503).
 */
export function createAdmission(options: AdmissionOptions): Admission {
  const { auth, targets } = options;
  return async (req) => {
    if (auth) {
      try {
        await auth.authenticate(authRequestOf(req));
      } catch (err) {
        // Marked as the auth plugin's, for `--ban-after` and the refusal's counters.
        if (err instanceof HttpError && err.kind === undefined) throw new HttpError(err.status, err.message, err.headers, 'auth');
        throw err;
      }
    }
    return targets.targetFor(req);
  };
}
