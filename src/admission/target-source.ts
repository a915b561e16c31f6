import type { IncomingMessage } from 'node:http';
import { describeAddress, originOf } from '../client-address/origin.js';
import { HttpError } from '../errors.js';
import { describeTarget, type Target } from '../targets/target.js';
import { type TokenPlugin, TokenSourceError } from '../tokens/plugin.js';
import { describeTokenLocation, type TokenLocation, tokenOf } from './request-token.js';

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
 * Each connection goes where its token says (`--token-plugin`): 404 for a missing or unknown token,
 * 400 for a malformed token cookie or a repeated token header, 503 when the plugin's source cannot be asked.
 * @param options.name the plugin's name, for the listening line.
 * @param options.lookupDone told how long each lookup took, in seconds (the metrics, when on).
 */
export function tokenTargets(
  plugin: TokenPlugin,
  options: { location: TokenLocation; name: string; lookupDone?: ((seconds: number) => void) | undefined },
): TargetSource {
  const { location, name, lookupDone } = options;
  const where = describeTokenLocation(location);
  return {
    async targetFor(req) {
      const token = tokenOf(req, location);
      if (!token) throw new HttpError(404, `missing token (looked in ${where})`, {}, 'unknown_token');
      let found: Target | undefined;
      const started = lookupDone && performance.now();
      try {
        const origin = originOf(req);
        found = await plugin.lookup(token, { client: describeAddress(origin.client), remoteAddress: origin.client.address });
      } catch (err) {
        if (err instanceof TokenSourceError) throw new HttpError(503, `token source unavailable: ${err.message}`, {}, 'token_source_down');
        throw err;
      } finally {
        if (started !== undefined) lookupDone?.((performance.now() - started) / 1000);
      }
      if (!found) throw new HttpError(404, `unknown token '${token}'`, {}, 'unknown_token');
      return found;
    },
    describe: () => `the target each token names (${name}, token from ${where})`,
    close: () => plugin.close?.(),
  };
}
