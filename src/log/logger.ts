import { type DestinationStream, type LogFn, type Logger, pino, type StreamEntry } from 'pino';
import { StartupError, systemErrorText } from '../errors.js';
import { createSyslogDestination } from './syslog.js';

export type { Logger };

/** Where and how log lines are written. */
export interface LogOptions {
  /** `text` (default): one human-readable line per event; `json`: one JSON object per line. */
  format: 'text' | 'json';
  /** Include debug events (`-v`). Default false. */
  verbose: boolean;
  /** Also append to this file (`--log-file`). */
  file?: string | undefined;
  /** Also send to this syslog server (`--syslog`): a socket path or UDP `host:port`. */
  syslog?: string | undefined;
  /** RFC 3164 instead of RFC 5424 syslog messages (`--legacy-syslog`). */
  legacySyslog: boolean;
  /**
   * Running as a daemon: nothing goes to stderr (there is no terminal), and syslog messages use the
   * daemon facility, as Python websockify's. Default false.
   */
  detached?: boolean;
}

/** pino's level numbers as text lines name them. */
const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * A JSON log line as one text line, `[ISO time] LEVEL: message`. Text mode logs no fields (see
 * withoutFields), so the line holds only level, time and message: a plain JSON.parse and a template are
 * all it takes (pino-pretty's general formatter cost more than the rest of logging together).
 */
export function textLine(json: string): string {
  const { level, time, msg } = JSON.parse(json) as { level: number; time: string; msg?: string };
  return `[${time}] ${LEVEL_NAMES[level] ?? `LEVEL${level}`}: ${msg ?? ''}\n`;
}

/** A destination with the chosen format: JSON lines as they are, or text lines. */
function formatted(format: LogOptions['format'], destination: DestinationStream | number): DestinationStream {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination;
  if (format === 'json') return dest;
  return { write: (line: string) => dest.write(textLine(line)) };
}

/**
 * In text mode no destination shows an event's fields (text lines hide them, syslog sends the message),
 * so they are left out rather than serialised to JSON only to be parsed back and dropped.
 */
function withoutFields(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  if (args.length > 1 && typeof args[0] === 'object') (args as unknown[])[0] = undefined;
  method.apply(this, args);
}

/**
 * Creates the process logger: stderr (as Python websockify; not when detached), plus the log file and
 * syslog when asked.
 * Writes are synchronous so that nothing is lost when the process exits.
 * @throws StartupError when the log file cannot be opened.
 */
export function createLogger(options: LogOptions): Logger {
  const level = options.verbose ? 'debug' : 'info';
  const streams: StreamEntry[] = options.detached ? [] : [{ level, stream: formatted(options.format, 2) }];
  if (options.file) {
    let file: DestinationStream;
    try {
      file = pino.destination({ dest: options.file, append: true, sync: true });
    } catch (err) {
      throw new StartupError(`cannot open log file ${options.file}: ${systemErrorText(err, { creating: true })}`);
    }
    streams.push({ level, stream: formatted(options.format, file) });
  }
  if (options.syslog) {
    streams.push({
      level,
      stream: createSyslogDestination(options.syslog, { legacy: options.legacySyslog, facility: options.detached ? 3 : 1 }),
    });
  }
  const hooks = options.format === 'text' ? { logMethod: withoutFields } : {};
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime, hooks }, pino.multistream(streams));
}
