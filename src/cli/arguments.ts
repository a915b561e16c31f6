import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseSyslogServer } from '../log/syslog.js';

/**
 * An option's argument parser from a check of the library's: the text is checked as it is read, so that
 * a typo is a usage error naming the option (commander's wording) rather than a failure later on.
 * @param check throws an Error whose message says what is wrong with the text.
 */
function checkedArgument(check: (text: string) => unknown): (text: string) => string {
  return (text) => {
    try {
      check(text);
    } catch (err) {
      throw new InvalidArgumentError(`${(err as Error).message}.`);
    }
    return text;
  };
}

/** A repeatable option's argument parser: each text checked as {@link checkedArgument} does, all collected. */
export function repeatableArgument(check: (text: string) => unknown): (text: string, previous: string[]) => string[] {
  const one = checkedArgument(check);
  return (text, previous) => [...previous, one(text)];
}

/** A non-negative number of seconds, fractions allowed (as in Python websockify). */
export function seconds(text: string): number {
  // Plain decimals only: Number() would also take '0x10', '1e3' and '' (as 0).
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw new InvalidArgumentError('expected a number of seconds (0 or more).');
  return Number(text);
}

/** Adds the log sinks' options both commands share: `--log-file`, `--syslog`, `--legacy-syslog`, `--log-format`. */
export function addLogOptions(program: Command): Command {
  return program
    .option('--log-file <file>', 'also append log lines to FILE')
    .option(
      '--syslog <server>',
      'also log to syslog: a local socket such as /dev/log, or a UDP host:port',
      checkedArgument(parseSyslogServer),
    )
    .option('--legacy-syslog', 'use the old syslog format (RFC 3164) instead of RFC 5424')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'));
}
