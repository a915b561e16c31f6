import { type Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { packageVersion } from '../version.js';

/** What a command line asked for that ends before anything runs: the help or the version, as text to print. */
export interface ExitRequest {
  kind: 'exit';
  output: string;
}

/**
 * Parses `argv` (without `node` and the script) with a commander program of the package's commands,
 * whose output is held back: `--help` and `--version` come back as text to print, and a malformed
 * command line as a UsageError in commander's words.
 * @param usageError words of the command's own for one of commander's errors, when it has better ones.
 * @returns the help or version text, or undefined when the command is to run (its values are on `program`).
 * @throws UsageError for a malformed command line.
 */
export function parseCommandLine(
  program: Command,
  argv: readonly string[],
  usageError?: (err: CommanderError) => UsageError | undefined,
): ExitRequest | undefined {
  let helpText = '';
  program.configureOutput({ writeOut: (text) => (helpText += text), writeErr: () => undefined });
  try {
    program.parse(argv as string[], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed') return { kind: 'exit', output: helpText };
    throw usageError?.(err) ?? new UsageError(err.message.replace(/^error: /, ''));
  }
  if (program.opts().version) return { kind: 'exit', output: `websockify-ts ${packageVersion()}\n` };
  return undefined;
}
