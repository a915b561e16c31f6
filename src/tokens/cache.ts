import { createHash } from 'node:crypto';
import type { Target } from '../targets/target.js';
import { type TokenCacheOptions, type TokenPlugin, TokenRejectedError } from './plugin.js';

/** `--token-cache-entries` unless given: a few MiB at most, keys being digests. */
export const DEFAULT_TOKEN_CACHE_ENTRIES = 10_000;

/** What a source said of a token, and when that stops being true if sooner than the cache's limit. */
export interface FreshAnswer {
  /** The target, or undefined for an unknown token. */
  target: Target | undefined;
  /** Ms since the epoch after which the answer must be asked again (a JWT's `exp`). */
  until?: number | undefined;
}

/** One kept answer: a target, an unknown token (neither field), or a rejection's reason. */
interface Entry {
  expires: number;
  target: Target | undefined;
  rejected: string | undefined;
}

/**
 * Answers kept for a while, least recently used dropped first (a Map's order is its insertion order, and
 * each hit re-inserts). Keys are SHA-256 digests of the tokens (44 characters), so that a 16 KiB token
 * costs no more than a short one.
 * Only answers are kept: a source that cannot be asked (TokenSourceError) is asked again next time.
 */
class TokenCache {
  private readonly kept = new Map<string, Entry>();
  /** Questions on their way to the source, by key: a burst of handshakes with one token asks once. */
  private readonly asking = new Map<string, Promise<Target | undefined>>();

  constructor(private readonly options: TokenCacheOptions) {}

  /**
   * The kept answer for `token`, or `ask`'s, which is then kept: a target, undefined (unknown token), or a
   * TokenRejectedError thrown again for each hit. Any other failure of `ask` passes through, not kept.
   * Lookups of a token while its question is out wait for that answer (or failure) instead of asking again.
   */
  async lookup(token: string, ask: () => Promise<FreshAnswer>): Promise<Target | undefined> {
    const key = createHash('sha256').update(token).digest('base64');
    const now = Date.now();
    const entry = this.kept.get(key);
    if (entry) {
      this.kept.delete(key);
      if (entry.expires > now) {
        this.kept.set(key, entry);
        if (entry.rejected !== undefined) throw new TokenRejectedError(entry.rejected, { until: entry.expires });
        return entry.target;
      }
    }
    const pending = this.asking.get(key);
    if (pending) return pending;
    const asked = this.askAndKeep(key, ask).finally(() => this.asking.delete(key));
    this.asking.set(key, asked);
    return asked;
  }

  private async askAndKeep(key: string, ask: () => Promise<FreshAnswer>): Promise<Target | undefined> {
    let answer: FreshAnswer;
    try {
      answer = await ask();
    } catch (err) {
      if (err instanceof TokenRejectedError) this.keep(key, undefined, err.message, err.until);
      throw err;
    }
    this.keep(key, answer.target, undefined, answer.until);
    return answer.target;
  }

  private keep(key: string, target: Target | undefined, rejected: string | undefined, until: number | undefined): void {
    const expires = Math.min(Date.now() + this.options.seconds * 1000, until ?? Number.POSITIVE_INFINITY);
    if (expires <= Date.now()) return;
    this.kept.delete(key);
    this.kept.set(key, { expires, target, rejected });
    for (const oldest of this.kept.keys()) {
      if (this.kept.size <= this.options.entries) break;
      this.kept.delete(oldest);
    }
  }
}

/**
 * A plugin's lookup through a cache when `options` asks for one (`--token-cache`), else straight to
 * `ask`. Each plugin has its own cache; with `--workers` each worker has its own.
 */
export function cachedLookup(
  options: TokenCacheOptions | undefined,
  ask: (token: string) => Promise<FreshAnswer>,
): (token: string) => Promise<Target | undefined> {
  if (!options) return async (token) => (await ask(token)).target;
  const cache = new TokenCache(options);
  return (token) => cache.lookup(token, () => ask(token));
}

/** `plugin` with its lookups through a cache when `options` asks for one, else `plugin` itself. */
export function withTokenCache(options: TokenCacheOptions | undefined, plugin: TokenPlugin): TokenPlugin {
  if (!options) return plugin;
  return { ...plugin, lookup: cachedLookup(options, async (token) => ({ target: await plugin.lookup(token) })) };
}
