/**
 * Characters that must not reach a log line or an HTTP answer as they are: C0 and C1 controls and DEL
 * (a newline starts a forged log line; ESC and CSI drive terminals), format characters (bidirectional
 * overrides reorder what a reader sees), line and paragraph separators, and lone surrogates.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(char: string): string {
  const named = NAMED[char];
  if (named) return named;
  const code = char.codePointAt(0)!;
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * A string as it may be written to a log line or an HTTP answer: every control, format or separator
 * character escaped (`\n`, `\x1b`, `\u2028`), so a client-supplied part (a path, token, close reason,
 * header, user name) can neither start a line of its own nor drive the reader's terminal.
 * Printable text, non-ASCII letters included, is left as it is.
 */
export function printable(text: string): string {
  UNPRINTABLE.lastIndex = 0;
  return UNPRINTABLE.test(text) ? text.replace(UNPRINTABLE, escapeChar) : text;
}
