import path from 'node:path';
import { HttpError, StartupError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isModulePath, loadPluginModule } from '../plugin-module.js';
import { isPort } from '../targets/address.js';
import type { Target, TargetTls } from '../targets/target.js';
import { type TokenCacheOptions, type TokenPlugin, type TokenPluginContext, type TokenPluginFactory, TokenSourceError } from './plugin.js';

type Create = (source: string | undefined, context: TokenPluginContext) => Promise<TokenPlugin> | TokenPlugin;

/**
 * The built-in plugins by Python websockify's names. Each is imported when chosen, so that a proxy
 * without tokens (or with token files) does not load the Redis or JOSE libraries.
 */
const BUILT_IN: Record<string, Create> = {
  TokenFile: async (source, context) => (await import('./token-file.js')).createTokenFile(source, context, true),
  ReadOnlyTokenFile: async (source, context) => (await import('./token-file.js')).createTokenFile(source, context, false),
  TokenFileName: async (source, context) => (await import('./token-file-name.js')).createTokenFileName(source, context),
  UnixDomainSocketDirectory: async (source, context) =>
    (await import('./unix-socket-directory.js')).createUnixSocketDirectory(source, context),
  BaseTokenAPI: async (source, context) => (await import('./token-api.js')).createTokenApi(source, context, 'text'),
  JSONTokenApi: async (source, context) => (await import('./token-api.js')).createTokenApi(source, context, 'json'),
  JWTTokenApi: async (source, context) => (await import('./jwt.js')).createJwtPlugin(source, context),
  TokenRedis: async (source, context) => (await import('./redis.js')).createRedisPlugin(source, context),
};

/** The built-in plugins' factories by name, for library users who build a plugin themselves. */
export const builtInTokenPlugins: Readonly<Record<string, TokenPluginFactory>> = BUILT_IN;

/** The built-in plugin names, for help and error messages. */
export const TOKEN_PLUGIN_NAMES: readonly string[] = Object.keys(BUILT_IN);

/** A lookup may take this long unless the caller says otherwise. */
const DEFAULT_LOOKUP_TIMEOUT_MS = 3000;

/**
 * The lookup timeout for a handshake timeout in seconds: half of it, at most the default, so that a slow
 * source is answered with 503 before the handshake deadline drops the connection.
 */
export function lookupTimeoutFor(handshakeTimeout: number): number {
  return Math.min(DEFAULT_LOOKUP_TIMEOUT_MS, Math.max(1, handshakeTimeout * 500));
}

/**
 * The built-in name meant by `name`, accepting Python's full spelling `websockify.token_plugins.TokenFile`;
 * undefined for an unknown name.
 */
export function builtInTokenPlugin(name: string): string | undefined {
  const short = name.replace(/^websockify\.token_plugins\./, '');
  return Object.hasOwn(BUILT_IN, short) ? short : undefined;
}

/** Options for {@link loadTokenPlugin}. */
export interface LoadOptions {
  /** Longest time a lookup may take; default {@link DEFAULT_LOOKUP_TIMEOUT_MS}. */
  timeoutMs?: number | undefined;
  /** `--ssl-target`: TLS to every TCP target the plugin names. */
  targetTls?: TargetTls | undefined;
  /** `--token-cache`: for the built-in remote plugins (see {@link TokenPluginContext.cache}). */
  cache?: TokenCacheOptions | undefined;
}

/**
 * Creates the token plugin `name` (a built-in name, or a path to a module whose default export is a
 * {@link TokenPluginFactory}) with `source` (`--token-source`); a plugin object is used as it is.
 * @throws StartupError when the plugin is unknown, the module unusable, or the source bad.
 */
export async function loadTokenPlugin(
  name: string | TokenPlugin,
  source: string | undefined,
  logger: Logger,
  options: LoadOptions = {},
): Promise<TokenPlugin> {
  const context: TokenPluginContext = { logger, timeoutMs: options.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, cache: options.cache };
  const builtIn = typeof name === 'string' ? builtInTokenPlugin(name) : undefined;
  let plugin: TokenPlugin;
  if (typeof name !== 'string') {
    // A library user's plugin object is held to the interface as a module's is.
    plugin = guarded(name);
  } else if (builtIn) {
    try {
      plugin = await BUILT_IN[builtIn]!(source, context);
    } catch (err) {
      if (err instanceof StartupError) throw err;
      throw new StartupError(`token plugin ${builtIn}: ${(err as Error).message}`);
    }
  } else if (isModulePath(name)) {
    plugin = guarded(
      await loadPluginModule<TokenPlugin>(name, { name: 'token plugin', method: 'lookup', parameters: 'token' }, source, context),
    );
  } else {
    throw new StartupError(
      `unknown token plugin '${name}' (built-in: ${TOKEN_PLUGIN_NAMES.join(', ')}; or a path to your own module, such as ./my-plugin.js)`,
    );
  }
  return options.targetTls ? withTargetTls(plugin, options.targetTls) : plugin;
}

/**
 * A user's plugin, held to the interface: any failure of its lookup other than an HttpError is the source
 * being unavailable (503), and what it returns must be a well-formed target.
 */
function guarded(plugin: TokenPlugin): TokenPlugin {
  return {
    async lookup(token, request) {
      let found: unknown;
      try {
        found = await plugin.lookup(token, request);
      } catch (err) {
        if (err instanceof HttpError || err instanceof TokenSourceError) throw err;
        throw new TokenSourceError(`token plugin failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      if (found === undefined || found === null) return undefined;
      return checkedTarget(found);
    },
    close: () => plugin.close?.(),
  };
}

/** A target as a user's plugin returned it, checked and copied. */
function checkedTarget(value: unknown): Target {
  const target = value as Partial<{ kind: unknown; host: unknown; port: unknown; path: unknown }>;
  if (target.kind === 'tcp' && typeof target.host === 'string' && target.host !== '' && isPort(target.port)) {
    return { kind: 'tcp', host: target.host, port: target.port };
  }
  if (target.kind === 'unix' && typeof target.path === 'string' && path.isAbsolute(target.path)) return { kind: 'unix', path: target.path };
  throw new TokenSourceError(`token plugin returned ${JSON.stringify(value)}, not {kind: 'tcp', host, port} or {kind: 'unix', path}`);
}

/** Adds `--ssl-target`'s TLS settings to each TCP target the plugin names. */
function withTargetTls(plugin: TokenPlugin, tls: TargetTls): TokenPlugin {
  return {
    async lookup(token, request) {
      const target = await plugin.lookup(token, request);
      return target?.kind === 'tcp' ? { ...target, tls } : target;
    },
    close: () => plugin.close?.(),
  };
}
