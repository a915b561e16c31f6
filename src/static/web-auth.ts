import { authRequestOf } from '../admission/admission.js';
import type { AuthPlugin } from '../auth/plugin.js';
import { HttpError } from '../errors.js';
import { answerRequest, logRefusal } from '../handshake/http-response.js';
import type { Logger } from '../log/logger.js';
import type { RefusalCounter } from '../metrics/refusals.js';
import type { WebHandler } from './handler.js';

/**
 * `--web-auth`: each web request passes the auth plugin before `serve` sees it; a refusal is answered
 * with its status, logged and counted (`counter`: the metrics, when on), a plugin's own failure with 500.
 */
export function withWebAuth(auth: AuthPlugin, serve: WebHandler, logger: Logger, counter?: RefusalCounter): WebHandler {
  return async (req, res) => {
    try {
      await auth.authenticate(authRequestOf(req));
    } catch (err) {
      const refusal =
        err instanceof HttpError ? err : new HttpError(500, `internal error in the auth plugin: ${(err as Error)?.message ?? String(err)}`);
      logRefusal(logger, req, refusal.status, refusal.message, refusal.kind ?? (refusal.status === 500 ? 'internal' : 'auth'), counter);
      if (res.headersSent || !req.socket.writable) return; // the handshake deadline answered first
      answerRequest(res, refusal.status, refusal.message, refusal.headers);
      return;
    }
    serve(req, res);
  };
}
