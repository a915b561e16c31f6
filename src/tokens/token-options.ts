import type { TokenLocation } from '../admission/request-token.js';
import { UsageError } from '../errors.js';
import type { ProxyOptions } from '../options.js';
import { DEFAULT_TOKEN_CACHE_ENTRIES } from './cache.js';
import { builtInTokenPlugin } from './load.js';
import type { TokenCacheOptions } from './plugin.js';

/** The plugins `--token-cache` applies to: the remote ones, whose answers do not depend on who asks. */
const CACHING_PLUGINS = ['TokenRedis', 'BaseTokenAPI', 'JSONTokenApi', 'JWTTokenApi'];

/** An HTTP token (RFC 9110 section 5.6.2): what header names and cookie names are made of. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

type TokenOptions = Pick<
  ProxyOptions,
  'tokenPlugin' | 'targetConfig' | 'hostToken' | 'tokenHeader' | 'tokenCookie' | 'tokenCache' | 'tokenCacheEntries'
>;

/**
 * Where the token is read (`hostToken`, `tokenHeader`, `tokenCookie`), checked.
 * @throws UsageError for a malformed name, a name that has its own option, or a contradiction.
 */
export function tokenLocationOf(options: TokenOptions): TokenLocation {
  const tokens = options.tokenPlugin !== undefined || options.targetConfig !== undefined;
  const { tokenHeader, tokenCookie } = options;
  for (const [flag, name] of [
    ['--token-header', tokenHeader],
    ['--token-cookie', tokenCookie],
  ] as const) {
    if (name === undefined) continue;
    if (!tokens) throw new UsageError(`${flag} needs --token-plugin`);
    if (typeof name !== 'string' || !HTTP_TOKEN.test(name))
      throw new UsageError(`${flag}: '${name}' is not a valid name (letters, digits and !#$%&'*+-.^_\`|~)`);
    if (options.hostToken)
      throw new UsageError(`${flag} and --host-token contradict each other: --host-token takes the token from Host alone`);
  }
  if (tokenHeader !== undefined && ['host', 'cookie'].includes(tokenHeader.toLowerCase())) {
    throw new UsageError(
      `--token-header ${tokenHeader}: use ${tokenHeader.toLowerCase() === 'host' ? '--host-token' : '--token-cookie NAME'} instead`,
    );
  }
  return { fromHost: options.hostToken ?? false, header: tokenHeader?.toLowerCase(), cookie: tokenCookie };
}

/**
 * `--token-cache SECONDS` and `--token-cache-entries N`, checked; undefined when off (0 or not given).
 * @throws UsageError for a bad number, or a plugin that does not cache (files are already read only when
 *   they change; users' plugins may decide by the client, which a cache by token would ignore).
 */
export function tokenCacheOf(options: TokenOptions): TokenCacheOptions | undefined {
  const { tokenCache, tokenCacheEntries } = options;
  if (tokenCache !== undefined && (typeof tokenCache !== 'number' || !Number.isFinite(tokenCache) || tokenCache < 0)) {
    throw new UsageError(`--token-cache: expected a number of seconds (0 or more), got ${tokenCache}`);
  }
  if (tokenCacheEntries !== undefined && (!Number.isSafeInteger(tokenCacheEntries) || tokenCacheEntries < 1)) {
    throw new UsageError(`--token-cache-entries: expected a positive whole number, got ${tokenCacheEntries}`);
  }
  if (!tokenCache) {
    if (tokenCacheEntries !== undefined) throw new UsageError('--token-cache-entries needs --token-cache SECONDS');
    return undefined;
  }
  const plugin = options.targetConfig !== undefined ? 'TokenFile' : options.tokenPlugin;
  if (plugin === undefined) throw new UsageError('--token-cache needs --token-plugin');
  const builtIn = typeof plugin === 'string' ? builtInTokenPlugin(plugin) : undefined;
  if (!builtIn || !CACHING_PLUGINS.includes(builtIn)) {
    throw new UsageError(
      `--token-cache works with ${CACHING_PLUGINS.join(', ')}; ${builtIn ?? 'a plugin of your own'} ${
        builtIn ? 'reads local files or sockets, which need no cache' : 'may choose by the client, which a cache by token would not see'
      }`,
    );
  }
  return { seconds: tokenCache, entries: tokenCacheEntries ?? DEFAULT_TOKEN_CACHE_ENTRIES };
}
