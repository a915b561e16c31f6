import { Redis } from 'ioredis';
import { StartupError } from '../errors.js';
import { formatHostPort, portFromText } from '../targets/address.js';
import type { Target } from '../targets/target.js';
import { withTokenCache } from './cache.js';
import { type TokenPlugin, type TokenPluginContext, TokenSourceError } from './plugin.js';
import { parseTargetJsonText, parseTargetText } from './target-text.js';

/** Where TokenRedis finds its tokens. */
export interface RedisSource {
  host: string;
  port: number;
  db: number;
  password: string | undefined;
  /** Prefix of every key, with its ':' (empty for none). */
  prefix: string;
}

/**
 * Splits at colons as Python websockify does, except inside a field that is wholly double-quoted
 * (`host::::"ns:sub"`), whose quotes are removed.
 */
function splitFields(text: string): string[] {
  const fields: string[] = [];
  let rest = text;
  for (;;) {
    const quoted = /^"([^"]+)"(?=:|$)/.exec(rest);
    const field = quoted ? quoted[1]! : rest.split(':', 1)[0]!;
    fields.push(field);
    rest = rest.slice(quoted ? quoted[0].length : field.length);
    if (rest === '') return fields;
    rest = rest.slice(1); // the colon
  }
}

/**
 * Parses `host[:port[:db[:password[:namespace]]]]`; empty fields take their defaults (6379, 0, no
 * password, no namespace).
 * @throws StartupError naming the expected format.
 */
export function parseRedisSource(text: string): RedisSource {
  const fields = splitFields(text);
  const [host = '', port = '', db = '', password = '', namespace = ''] = fields;
  const bad = (why: string): StartupError =>
    new StartupError(`TokenRedis: ${why} in --token-source '${text}' (expected host[:port[:db[:password[:namespace]]]])`);
  if (fields.length > 5) throw bad('too many fields');
  if (host === '') throw bad('no host');
  if (port !== '' && portFromText(port) === undefined) throw bad(`invalid port '${port}'`);
  if (db !== '' && !/^\d+$/.test(db)) throw bad(`invalid database number '${db}'`);
  return {
    host,
    port: port === '' ? 6379 : Number(port),
    db: db === '' ? 0 : Number(db),
    password: password === '' ? undefined : password,
    prefix: namespace === '' ? '' : `${namespace}:`,
  };
}

/** A stored value: `host:port`, or JSON `{"host": "h:p"}` / `{"host": "h", "port": p}`. */
function parseValue(value: string): Target {
  const text = value.trim();
  return text.startsWith('{') ? parseTargetJsonText(text) : parseTargetText(text);
}

/**
 * `TokenRedis`: each token is a key (with the namespace's prefix) in Redis. While Redis is unreachable
 * lookups fail at once with TokenSourceError (503) rather than queueing, and the client reconnects in
 * the background, so service resumes by itself when Redis is back. Redis down at start-up is logged, not
 * fatal, for the same reason. With `--token-cache` answers are kept (a kept one is served while Redis is
 * down; a malformed value is not an answer and is not kept).
 * @throws StartupError when the source is malformed.
 */
export async function createRedisPlugin(source: string | undefined, context: TokenPluginContext): Promise<TokenPlugin> {
  if (!source) throw new StartupError('TokenRedis needs --token-source host[:port[:db[:password[:namespace]]]]');
  const { logger, timeoutMs } = context;
  const settings = parseRedisSource(source);
  const where = formatHostPort(settings.host, settings.port);
  const redis = new Redis({
    host: settings.host,
    port: settings.port,
    db: settings.db,
    password: settings.password,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // Fail a lookup now rather than hold the client's handshake while Redis is away.
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // Keep trying, never more than a second apart, so that service resumes soon after Redis does.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  let up = false;
  let lastError = '';
  redis.on('ready', () => {
    up = true;
    logger.info({ event: 'token-source-up', redis: where }, `TokenRedis: connected to Redis at ${where}`);
  });
  redis.on('error', (err: Error) => {
    // ioredis repeats the error at each reconnection attempt: one line per change is enough.
    if (!up && err.message === lastError) return;
    up = false;
    lastError = err.message;
    logger.warn(
      { event: 'token-source-down', redis: where, err: err.message },
      `TokenRedis: Redis at ${where} unreachable: ${err.message}; lookups get 503 until it answers`,
    );
  });
  redis.on('end', () => (up = false));
  // A failed first attempt is already logged ('error') and retried by retryStrategy.
  await redis.connect().catch(() => undefined);
  return withTokenCache(context.cache, {
    async lookup(token) {
      let value: string | null;
      try {
        value = await redis.get(settings.prefix + token);
      } catch (err) {
        throw new TokenSourceError(`Redis at ${where}: ${(err as Error).message}`, { cause: err });
      }
      if (value === null) return undefined;
      try {
        return parseValue(value);
      } catch (err) {
        logger.warn(
          { event: 'token-redis-error', redis: where, key: settings.prefix + token, reason: (err as Error).message },
          `TokenRedis: the value of key '${settings.prefix + token}' is unusable: ${(err as Error).message}`,
        );
        throw new TokenSourceError(`the entry for this token in Redis is malformed`);
      }
    },
    close() {
      redis.disconnect();
    },
  });
}
