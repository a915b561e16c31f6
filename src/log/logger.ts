import { format } from 'node:util';
import { type BaseLogger, type DestinationStream, type LogFn, type Logger as PinoLogger, pino } from 'pino';
import { StartupError, systemErrorText } from '../errors.js';
import { printable } from './printable.js';
import { createSyslog } from './syslog.js';

/**
 * What the proxy logs through: the pino methods it calls. `createLogger`'s logger is one; so is any
 * pino logger of the caller's, Fastify's `fastify.log` among them. Without `isLevelEnabled`, debug
 * lines are always built (and the logger decides).
 */
export type Logger = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'> & { isLevelEnabled?(level: string): boolean };

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
  /** In a worker process (`--workers`): its number, which every line names (`worker N: ...`, JSON `worker`). */
  worker?: number | undefined;
}

/** pino's level numbers as text lines name them. */
const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * The message of a log call, as pino makes it: the string after an optional object (else an Error's
 * message), printf-style arguments filled in. The object's fields are not part of it.
 */
function messageOf(args: readonly unknown[]): string {
  const [first] = args;
  const [msg, ...params] = typeof first === 'object' && first !== null ? args.slice(1) : args;
  if (msg === undefined || msg === null) return first instanceof Error ? first.message : '';
  return params.length > 0 ? format(msg, ...params) : String(msg);
}

/** Opens the log file for appending. @throws StartupError saying why it cannot be opened. */
function openLogFile(file: string): DestinationStream {
  try {
    return pino.destination({ dest: file, append: true, sync: true });
  } catch (err) {
    throw new StartupError(`cannot open log file ${file}: ${systemErrorText(err, { creating: true })}`);
  }
}

/** pino's destination: the one JSON output (most often stderr) itself, or each of them. */
function jsonDestination(outputs: DestinationStream[]): DestinationStream {
  const [only] = outputs;
  if (only && outputs.length === 1) return only;
  return {
    write(line: string) {
      for (const output of outputs) output.write(line);
    },
  };
}

/**
 * Creates the process logger: stderr (as Python websockify; not when detached), plus the log file and
 * syslog when asked. Writes are synchronous so that nothing is lost when the process exits.
 * pino writes JSON lines only; text lines and syslog messages are made by its logMethod hook from the
 * call's arguments, each once, rather than from JSON made only to be parsed back.
 * @throws StartupError when the log file cannot be opened.
 */
export function createLogger(options: LogOptions): PinoLogger {
  const outputs: DestinationStream[] = options.detached ? [] : [pino.destination({ dest: 2, sync: true })];
  if (options.file) outputs.push(openLogFile(options.file));
  const json = options.format === 'json';
  const jsonOutputs = json ? outputs : [];
  const textOutputs = json ? [] : outputs;
  const syslog = options.syslog
    ? createSyslog(options.syslog, { legacy: options.legacySyslog, facility: options.detached ? 'daemon' : 'user' })
    : undefined;

  const prefix = options.worker === undefined ? '' : `worker ${options.worker}: `;
  // pino calls the hook only for enabled levels, and only with its own six (no custom levels here).
  function logMethod(this: PinoLogger, args: Parameters<LogFn>, method: LogFn, level: number): void {
    if (jsonOutputs.length > 0) method.apply(this, args);
    if (textOutputs.length === 0 && !syslog) return;
    const time = Date.now();
    // Messages quote what clients chose (paths, tokens, close reasons, headers, user names): escaped
    // here, where every line is made, so that none can start a line of its own. JSON lines escape by themselves.
    const msg = prefix + printable(messageOf(args));
    if (textOutputs.length > 0) {
      const line = `[${new Date(time).toISOString()}] ${LEVEL_NAMES[level]!}: ${msg}\n`;
      for (const output of textOutputs) output.write(line);
    }
    syslog?.send(level, time, msg);
  }
  // JSON lines alone need no hook: pino's own path is the cheapest.
  const hooks = json && !syslog ? {} : { logMethod };
  return pino(
    {
      level: options.verbose ? 'debug' : 'info',
      base: options.worker === undefined ? null : { worker: options.worker },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks,
    },
    jsonDestination(jsonOutputs),
  );
}
