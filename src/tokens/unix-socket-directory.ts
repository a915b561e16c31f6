import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type TokenPlugin, type TokenPluginContext, TokenSourceError } from './plugin.js';
import { sourceDirectory } from './source-directory.js';

/**
 * `UnixDomainSocketDirectory`: the source is a directory; a token is the name (or relative path) of a
 * Unix socket inside it. Tokens that would lead outside the directory are refused and logged.
 * @throws StartupError when the source is not a directory.
 */
export async function createUnixSocketDirectory(source: string | undefined, context: TokenPluginContext): Promise<TokenPlugin> {
  const dir = await sourceDirectory('UnixDomainSocketDirectory', source, 'Unix sockets');
  return {
    async lookup(token) {
      const socketPath = path.resolve(dir, token);
      const relative = path.relative(dir, socketPath);
      // A prefix test would let `/run/vnc-other` pass for `/run/vnc`; relative() cannot be fooled so.
      if (
        token.includes('\0') ||
        relative === '' ||
        relative === '..' ||
        relative.startsWith(`..${path.sep}`) ||
        path.isAbsolute(relative)
      ) {
        context.logger.warn({ event: 'token-path-escape', dir }, `UnixDomainSocketDirectory: refused a token that leads outside ${dir}`);
        return undefined;
      }
      let found: Stats;
      try {
        found = await fs.stat(socketPath);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw new TokenSourceError(`cannot look at ${socketPath}: ${code ?? (err as Error).message}`, { cause: err });
      }
      return found.isSocket() ? { kind: 'unix', path: socketPath } : undefined;
    },
  };
}
