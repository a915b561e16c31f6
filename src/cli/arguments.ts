import { InvalidArgumentError } from 'commander';
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

/** `--syslog`'s server, checked as the logger will read it. */
export const syslogServer = checkedArgument(parseSyslogServer);
