import { StartupError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { withTokenCache } from './cache.js';
import { type TokenPlugin, type TokenPluginContext, TokenSourceError } from './plugin.js';
import { parseTargetJsonText, parseTargetText } from './target-text.js';

/** How an answer's body becomes a target. */
type AnswerFormat = 'text' | 'json';

/**
 * `BaseTokenAPI` (answer `host:port` as text) and `JSONTokenApi` (answer `{"host": ..., "port": ...}`):
 * the source is an http(s) URL in which `%s` stands for the token (URL-encoded). A 2xx answer names the
 * target; 404 and other 4xx mean unknown token; 5xx, a malformed answer, a network error or no answer
 * within the lookup timeout make the client's answer 503 (and are not kept by `--token-cache`).
 * @throws StartupError when the source is not such a URL.
 */
export function createTokenApi(source: string | undefined, context: TokenPluginContext, format: AnswerFormat): TokenPlugin {
  const name = format === 'json' ? 'JSONTokenApi' : 'BaseTokenAPI';
  if (!source) throw new StartupError(`${name} needs --token-source URL (with %s where the token goes)`);
  if (!source.includes('%s')) throw new StartupError(`${name}: the URL '${source}' has no %s where the token goes`);
  let protocol: string;
  try {
    protocol = new URL(source.replaceAll('%s', 'token')).protocol;
  } catch {
    throw new StartupError(`${name}: '${source}' is not a URL`);
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new StartupError(`${name}: '${source}' is not an http or https URL`);
  return withTokenCache(context.cache, {
    async lookup(token) {
      const url = source.replaceAll('%s', encodeURIComponent(token));
      const where = new URL(url).origin;
      let status: number;
      let body: string;
      try {
        // The body is covered by the same deadline: a server that stalls mid-answer is as down as one that never answers.
        const response = await fetch(url, {
          signal: AbortSignal.timeout(context.timeoutMs),
          headers: { Accept: format === 'json' ? 'application/json' : 'text/plain' },
        });
        status = response.status;
        body = await response.text();
      } catch (err) {
        const why = (err as Error).name === 'TimeoutError' ? `no answer within ${context.timeoutMs} ms` : describeFetchError(err);
        throw new TokenSourceError(`token API at ${where}: ${why}`, { cause: err });
      }
      if (status >= 500) throw new TokenSourceError(`token API at ${where} answered ${status}`);
      if (status < 200 || status >= 300) return undefined;
      try {
        return parseAnswer(body, format);
      } catch (err) {
        context.logger.warn(
          { event: 'token-api-error', api: where, reason: (err as Error).message },
          `token API at ${where}: unusable answer: ${(err as Error).message}`,
        );
        throw new TokenSourceError(`token API at ${where} gave an unusable answer`);
      }
    },
  });
}

function parseAnswer(body: string, format: AnswerFormat): Target {
  return format === 'text' ? parseTargetText(body.trim()) : parseTargetJsonText(body);
}

/** fetch() hides the network error (ECONNREFUSED...) in its cause. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
