import fs from 'node:fs/promises';
import path from 'node:path';
import { type TokenPlugin, type TokenPluginContext, TokenSourceError } from './plugin.js';
import { sourceDirectory } from './source-directory.js';
import { parseTargetText } from './target-text.js';

/**
 * Whether a token can name a file directly inside a directory: no separators, no `.`/`..`, no NUL, no
 * hidden names. Anything else is an unknown token, never a path to follow.
 */
function isPlainFileName(token: string): boolean {
  return token !== '' && !token.startsWith('.') && !/[/\\\0]/.test(token);
}

/**
 * `TokenFileName`: the source is a directory; a token is the name of a file in it whose content is
 * `host:port`. The file is read at each lookup, so adding or removing files takes effect at once.
 * @throws StartupError when the source is not a directory.
 */
export async function createTokenFileName(source: string | undefined, context: TokenPluginContext): Promise<TokenPlugin> {
  const dir = await sourceDirectory('TokenFileName', source, 'files named by token');
  return {
    async lookup(token) {
      if (!isPlainFileName(token)) return undefined;
      const file = path.join(dir, token);
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EISDIR') return undefined;
        throw new TokenSourceError(`cannot read ${file}: ${code ?? (err as Error).message}`, { cause: err });
      }
      try {
        return parseTargetText(text.trim());
      } catch (err) {
        context.logger.warn(
          { event: 'token-file-error', file, reason: (err as Error).message },
          `token file ${file}: ${(err as Error).message}`,
        );
        throw new TokenSourceError(`the entry for this token is malformed (${file})`);
      }
    },
  };
}
