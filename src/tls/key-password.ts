import fs from 'node:fs';
import { StartupError, systemErrorText } from '../errors.js';

/**
 * The password of an encrypted TLS key, read from `file` (`--key-password-file`) so that it never shows
 * on a command line (`ps`). One trailing newline (`\n` or `\r\n`), as `echo` or an editor leaves it, is
 * not part of it.
 * @throws StartupError naming the file when it cannot be read.
 */
export function readKeyPasswordFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(`cannot read TLS key password file ${file}: ${systemErrorText(err)}`);
  }
  return text.replace(/\r?\n$/, '');
}
