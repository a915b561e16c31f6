import type { IncomingMessage } from 'node:http';
import { describeAddress, originOf } from '../client-address/origin.js';
import { HttpError } from '../errors.js';
import { describeTarget, type Target } from '../targets/target.js';
import { type TokenPlugin, TokenSourceError } from '../tokens/plugin.js';

/**
 * Where each admitted handshake goes. A fixed target, a token plugin and a wrapped program are each
 * one of these; the route stage asks it once per handshake.
 */
export interface TargetSource {
  /**
   * The target of one handshake.
   * @throws HttpError to refuse it (404 unknown token, 503 token source down, 403 token rejected).
   */
  targetFor(req: IncomingMessage): Promise<Target> | Target;
  /** Where connections go, in words, for the listening line. */
  describe(): string;
  /** Releases what the source holds (a Redis connection, file watchers, a program). */
  close?(): Promise<void> | void;
}

/** Every connection goes to `target`. */
export function fixedTarget(target: Target): TargetSource {
  return { targetFor: () => target, describe: () => describeTarget(target) };
}

/**
 * The token of a request: the `token` query parameter on any path, or with `fromHost` the Host header
 * without its port (`[v6]:port` handled).
 */
function tokenOf(req: IncomingMessage, fromHost: boolean): string | undefined {
  if (!fromHost) return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
  const host = req.headers.host;
  if (!host) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1];
  return host.replace(/:\d+$/, '');
}

/**
 * Each connection goes where its token says (`--token-plugin`): 404 for a missing or unknown token,
 * 503 when the plugin's source cannot be asked.
 * @param name the plugin's name, for the listening line.
 */
export function tokenTargets(plugin: TokenPlugin, options: { fromHost: boolean; name: string }): TargetSource {
  const { fromHost, name } = options;
  return {
    async targetFor(req) {
      const token = tokenOf(req, fromHost);
      if (!token)
        throw new HttpError(
          404,
          fromHost ? 'no Host header to take the token from' : 'missing token (add ?token=... to the URL)',
          {},
          'token',
        );
      let found: Target | undefined;
      try {
        const origin = originOf(req);
        found = await plugin.lookup(token, { client: describeAddress(origin.client), remoteAddress: origin.client.address });
      } catch (err) {
        if (err instanceof TokenSourceError) throw new HttpError(503, `token source unavailable: ${err.message}`);
        throw err;
      }
      // Marked for `--ban-after` (guessing tokens) and the refusal's counters.
      if (!found) throw new HttpError(404, `unknown token '${token}'`, {}, 'token');
      return found;
    },
    describe: () => `the target each token names (${name}, token from ${fromHost ? 'the Host header' : '?token='})`,
    close: () => plugin.close?.(),
  };
}
