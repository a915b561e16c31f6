import fs from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from '../errors.js';

/**
 * The directory a plugin's `--token-source` names, made absolute.
 * @param plugin the plugin's name, for the messages.
 * @param holds what the directory holds, for the message when the source is missing.
 * @throws StartupError when the source is missing, unreadable or not a directory.
 */
export async function sourceDirectory(plugin: string, source: string | undefined, holds: string): Promise<string> {
  if (!source) throw new StartupError(`${plugin} needs --token-source DIR (a directory of ${holds})`);
  const dir = path.resolve(source);
  const stat = await fs.stat(dir).catch((err: NodeJS.ErrnoException) => {
    throw new StartupError(`${plugin}: cannot read ${dir}: ${err.code ?? err.message}`);
  });
  if (!stat.isDirectory()) throw new StartupError(`${plugin}: ${dir} is not a directory`);
  return dir;
}
