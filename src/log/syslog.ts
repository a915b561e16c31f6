/**
 * `--syslog SERVER` / `--legacy-syslog`: a pino destination that forwards every log line to a
 * syslog server, either over UDP or through a local Unix socket such as /dev/log.
 *
 * Message layout follows Python websockify's WebsockifySysLogHandler: RFC 5424 by default
 * (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, UTF-8 text marked with a BOM), no trailing
 * newline on datagrams, newlines inside a message turned into spaces, empty messages skipped.
 * The legacy (RFC 3164) form carries the full BSD header, `<PRI>Mmm dd hh:mm:ss HOSTNAME APP[PID]: MSG`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatHostPort, portFromText, splitHostPort } from '../targets/address.js';

/** Options for the syslog destination. */
export interface SyslogOptions {
  /** RFC 3164 (`--legacy-syslog`) instead of RFC 5424. */
  legacy: boolean;
  /** APP-NAME / tag; default 'websockify'. Cut to 24 characters as Python does, for old daemons. */
  appName?: string;
  /** Syslog facility 0..23; default 1 (user). Python websockify uses 3 (daemon) with --daemon. */
  facility?: number;
  /** Receives the single delivery-problem report; default writes one line to stderr. */
  onError?: (message: string) => void;
  /** The util-linux `logger` used for Unix sockets; default '/usr/bin/logger' if present, else 'logger' on PATH. */
  loggerPath?: string;
  /** How long to wait before re-resolving the UDP server or restarting `logger` after a failure; default 5000 ms. */
  retryDelayMs?: number;
}

/** Where syslog messages go, as parsed from `--syslog SERVER`. */
export type SyslogServer = { kind: 'udp'; host: string; port: number } | { kind: 'unix'; path: string };

/** A pino destination stream that also can be flushed and closed. */
export interface SyslogDestination {
  /** Takes one or more pino JSON lines; never throws. */
  write(line: string): void;
  /** Flushes what is queued (bounded by a short timeout) and closes the socket or `logger` child. */
  end(): Promise<void>;
}

/** The standard syslog UDP port, used when SERVER names no port. */
export const DEFAULT_SYSLOG_PORT = 514;

/** Message text is cut to this many bytes: keeps UDP datagrams sendable and `logger` from splitting lines. */
export const MAX_SYSLOG_MESSAGE_BYTES = 8192;

const DEFAULT_APP_NAME = 'websockify';
const DEFAULT_FACILITY = 1;
const MAX_APP_NAME = 24; // Python's _max_ident: "safer for old daemons"
const MAX_HOSTNAME = 255;
const DEFAULT_RETRY_DELAY_MS = 5000;
const END_TIMEOUT_MS = 2000;
/** Messages held while the UDP address is being resolved, or waiting in libuv to be sent. */
const MAX_QUEUED_MESSAGES = 1000;
/** Bytes that may wait in the pipe to `logger` before messages are dropped: keeps memory bounded. */
const MAX_PIPE_BACKLOG = 1 << 20;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Parses SERVER: 'host:port', '[v6]:port', 'host' or '[v6]' (port 514), or a local socket path.
 * Anything containing '/' is a path (made absolute, as Python does, since a daemon may chdir).
 * An unbracketed IPv6 address takes its last ':' group as the port, like Python's rsplit.
 * @throws Error naming the bad SERVER and what is wrong with it.
 */
export function parseSyslogServer(server: string): SyslogServer {
  const bad = (why: string): Error =>
    new Error(`invalid syslog server "${server}": ${why} (expected host:port, [ipv6]:port, host, or a local socket path such as /dev/log)`);
  if (server === '') throw bad('it is empty');
  if (server.includes('/')) return { kind: 'unix', path: path.resolve(server) };
  if (/\s/.test(server)) throw bad('it contains whitespace');

  const split = splitHostPort(server);
  if (!split) throw bad(server.startsWith('[') ? 'the bracketed IPv6 address is malformed' : 'brackets belong around an IPv6 address');
  const { host, port: portText } = split;
  if (split.bracketed) {
    if (!net.isIPv6(host)) throw bad(`"${host}" is not an IPv6 address`);
  } else {
    if (host.includes(':') && !net.isIPv6(host)) throw bad(`"${host}" is not an IPv6 address; write IPv6 as [address]:port`);
    if (host === '') throw bad('the host is missing');
  }
  return { kind: 'udp', host, port: portText === undefined ? DEFAULT_SYSLOG_PORT : parsePort(portText, bad) };
}

function parsePort(text: string, bad: (why: string) => Error): number {
  if (text === '') throw bad("the port after ':' is missing");
  const port = portFromText(text);
  if (port === undefined) throw bad(`port "${text}" is not a number from 1 to 65535`);
  return port;
}

/**
 * A pino destination (has write(line: string)) that turns each pino JSON line into one syslog
 * message sent to SERVER. A bad SERVER or option throws here; after that nothing throws: delivery
 * problems are reported once (stderr by default) and messages are dropped while they last.
 * Its sockets and child process do not keep the Node process alive.
 */
export function createSyslogDestination(server: string, options: SyslogOptions): SyslogDestination {
  const target = parseSyslogServer(server);
  const facility = options.facility ?? DEFAULT_FACILITY;
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) {
    throw new Error(`invalid syslog facility ${facility}: expected an integer from 0 to 23`);
  }
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const appName = headerToken(options.appName ?? DEFAULT_APP_NAME, MAX_APP_NAME);
  const report = onceReporter(options.onError ?? writeToStderr);
  const legacy = options.legacy;

  let transport: Transport;
  if (target.kind === 'udp') {
    const hostname = headerToken(os.hostname(), MAX_HOSTNAME);
    const pid = process.pid;
    const frame = (rec: LogRecord): Buffer => {
      const pri = facility * 8 + rec.severity;
      const head = legacy
        ? `<${pri}>${bsdTimestamp(rec.time)} ${hostname} ${appName}[${pid}]: `
        : `<${pri}>1 ${new Date(rec.time).toISOString()} ${hostname} ${appName} ${pid} - - `;
      return Buffer.concat([Buffer.from(head, 'latin1'), rec.bytes]);
    };
    transport = new UdpTransport(target.host, target.port, frame, retryDelayMs, report);
  } else {
    const loggerPath = options.loggerPath ?? (fs.existsSync('/usr/bin/logger') ? '/usr/bin/logger' : 'logger');
    transport = new LoggerTransport(target.path, legacy, appName, facility, loggerPath, retryDelayMs, report);
  }

  let ended = false;
  return {
    write(line: string): void {
      if (ended) return;
      try {
        for (const one of String(line).split('\n')) {
          if (one === '') continue;
          const rec = parseRecord(one, legacy);
          if (rec) transport.send(rec);
        }
      } catch (err) {
        report(`cannot send a message: ${errorText(err)}`);
      }
    },
    async end(): Promise<void> {
      if (ended) return;
      ended = true;
      try {
        await transport.end();
      } catch (err) {
        report(`cannot close: ${errorText(err)}`);
      }
    },
  };
}

/** One log event: syslog severity, event time, and the encoded message text. */
interface LogRecord {
  severity: number;
  time: number;
  bytes: Buffer;
}

interface Transport {
  send(rec: LogRecord): void;
  end(): Promise<void>;
}

/** pino level (number, or label if a formatter changed it) to syslog severity, as Python's mapPriority. */
function severityOf(level: unknown): number {
  if (typeof level === 'number') {
    if (level < 30) return 7; // trace, debug
    if (level < 40) return 6; // info
    if (level < 50) return 4; // warn
    if (level < 60) return 3; // error
    return 2; // fatal -> critical, as Python maps CRITICAL
  }
  switch (level) {
    case 'trace':
    case 'debug':
      return 7;
    case 'info':
      return 6;
    case 'warn':
      return 4;
    case 'error':
      return 3;
    case 'fatal':
      return 2;
    default:
      return 4; // Python's default for an unknown level name is "warning"
  }
}

/** Turns one pino JSON line into a record; undefined when there is nothing to log (Python skips empty text). */
function parseRecord(line: string, legacy: boolean): LogRecord | undefined {
  let fields: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      fields = parsed as Record<string, unknown>;
    }
  } catch {
    // Not pino JSON (e.g. a pretty-printed line): forward it as it is.
  }
  let text: string;
  if (fields === undefined) text = line;
  else if (typeof fields.msg === 'string') text = fields.msg;
  else if (fields.msg === undefined || fields.msg === null) text = '';
  else text = String(fields.msg);
  // One message per datagram/line: line breaks would split it (and NUL ends a C string in logger).
  text = text.replace(/\r\n|[\r\n\0]/g, ' ');
  if (text === '') return undefined;
  // Like Python: plain ASCII as is, else UTF-8 with a BOM, which RFC 5424 uses to mark UTF-8.
  // RFC 3164 has no such marker and old daemons would show the BOM as junk, so legacy omits it.
  const prefix = !legacy && /[^\p{ASCII}]/u.test(text) ? '\ufeff' : '';
  return {
    severity: severityOf(fields?.level),
    time: eventTime(fields?.time),
    bytes: truncateUtf8(Buffer.from(prefix + text, 'utf8'), MAX_SYSLOG_MESSAGE_BYTES),
  };
}

function eventTime(value: unknown): number {
  const t = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? t : Date.now();
}

/** Cuts at a character boundary so the receiver never sees half a UTF-8 sequence. */
function truncateUtf8(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/** Header fields must be printable ASCII without spaces (RFC 5424 PRINTUSASCII); '-' is the NILVALUE. */
function headerToken(value: string, max: number): string {
  const token = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return token === '' ? '-' : token;
}

/** RFC 3164 TIMESTAMP: local time, 'Mmm dd hh:mm:ss' with the day padded by a space. */
function bsdTimestamp(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function writeToStderr(message: string): void {
  process.stderr.write(`websockify: ${message}\n`);
}

/** Reports the first problem only: an unreachable server would otherwise flood stderr once per log line. */
function onceReporter(sink: (message: string) => void): (detail: string) => void {
  let reported = false;
  return (detail) => {
    if (reported) return;
    reported = true;
    try {
      sink(`syslog: ${detail}; syslog messages may be lost, further syslog errors are not reported`);
    } catch {
      // Reporting must not break logging either.
    }
  };
}

/** Resolves after ms unless cancelled; its timer keeps the process alive so end() can finish. */
function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * One connected UDP socket. The name is resolved once (not per message, as Python does) and the
 * socket is connected so that ICMP "port unreachable" comes back as ECONNREFUSED and gets reported.
 * After a resolve/connect failure it tries again on the first message after retryDelayMs.
 */
class UdpTransport implements Transport {
  private state: 'connecting' | 'ready' | 'failed' | 'closed' = 'connecting';
  private socket: dgram.Socket | undefined;
  private queue: Buffer[] = [];
  private retryAt = 0;
  private inFlight = 0;
  private settled: (() => void)[] = [];
  private drained: (() => void)[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly frame: (rec: LogRecord) => Buffer,
    private readonly retryDelayMs: number,
    private readonly report: (detail: string) => void,
  ) {
    this.connect();
  }

  private get where(): string {
    return formatHostPort(this.host, this.port);
  }

  send(rec: LogRecord): void {
    if (this.state === 'failed' && Date.now() >= this.retryAt) this.connect();
    if (this.state === 'ready') this.transmit(this.frame(rec));
    else if (this.state === 'connecting') {
      // Framed now, so the header carries the event's own time.
      if (this.queue.length < MAX_QUEUED_MESSAGES) this.queue.push(this.frame(rec));
      else this.report(`server ${this.where} is not resolved yet and the queue is full`);
    }
    // 'failed' (waiting to retry) and 'closed' drop the message.
  }

  private connect(): void {
    this.state = 'connecting';
    const family = net.isIP(this.host);
    if (family !== 0) {
      this.open(this.host, family);
      return;
    }
    dns.lookup(this.host, (err, address, fam) => {
      if (this.state !== 'connecting') return; // closed meanwhile
      if (err) this.fail(`cannot resolve ${this.host}: ${err.message}`);
      else this.open(address, fam);
    });
  }

  private open(address: string, family: number): void {
    let socket: dgram.Socket;
    try {
      socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    } catch (err) {
      this.fail(`cannot create a UDP socket: ${errorText(err)}`);
      return;
    }
    this.socket = socket;
    socket.on('error', (err) => this.report(`UDP socket for ${this.where}: ${err.message}`));
    socket.unref();
    socket.connect(this.port, address, (err?: Error) => {
      if (this.socket !== socket || this.state !== 'connecting') return;
      if (err) {
        this.fail(`cannot connect to ${this.where}: ${err.message}`);
        return;
      }
      this.state = 'ready';
      const queued = this.queue;
      this.queue = [];
      for (const bytes of queued) this.transmit(bytes);
      this.settle();
    });
  }

  private transmit(bytes: Buffer): void {
    const socket = this.socket;
    if (!socket) return;
    if (this.inFlight >= MAX_QUEUED_MESSAGES) {
      // libuv queues datagrams the kernel cannot take yet; without a cap that queue could grow without bound.
      this.report(`sending to ${this.where} is not keeping up; dropping messages`);
      return;
    }
    this.inFlight++;
    const done = (err?: Error | null): void => {
      this.inFlight--;
      if (err) this.report(`cannot send to ${this.where}: ${err.message}`);
      if (this.inFlight === 0) for (const resolve of this.drained.splice(0)) resolve();
    };
    try {
      socket.send(bytes, done);
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private fail(detail: string): void {
    this.report(detail);
    this.state = 'failed';
    this.retryAt = Date.now() + this.retryDelayMs;
    this.queue = [];
    this.closeSocket();
    this.settle();
  }

  private settle(): void {
    for (const resolve of this.settled.splice(0)) resolve();
  }

  private closeSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    try {
      socket.close();
    } catch {
      // Already closed.
    }
  }

  async end(): Promise<void> {
    const timeout = delay(END_TIMEOUT_MS);
    try {
      this.socket?.ref(); // let queued datagrams go out before the process may exit
      if (this.state === 'connecting') {
        await Promise.race([new Promise<void>((resolve) => this.settled.push(resolve)), timeout.promise]);
      }
      if (this.inFlight > 0) {
        await Promise.race([new Promise<void>((resolve) => this.drained.push(resolve)), timeout.promise]);
      }
    } finally {
      timeout.cancel();
      this.state = 'closed';
      this.queue = [];
      this.closeSocket();
    }
  }
}

/**
 * Node cannot send to a Unix datagram socket, so a long-lived util-linux `logger` does it: one
 * message per stdin line, priority per line via --prio-prefix, and --id to show our PID rather
 * than logger's. With --socket-errors=off it keeps running when the socket goes away and
 * reconnects by itself on the next message (with =on it exits), and it falls back to a stream
 * socket where the server is one. logger writes the header itself, in the same layout as UDP;
 * the timestamp is the time logger handles the line, and facility 0 (kern) becomes user.
 */
class LoggerTransport implements Transport {
  private state: 'running' | 'dead' | 'closed' = 'dead';
  private child: ChildProcess | undefined;
  private retryAt = 0;

  constructor(
    private readonly socketPath: string,
    private readonly legacy: boolean,
    private readonly appName: string,
    private readonly facility: number,
    private readonly loggerPath: string,
    private readonly retryDelayMs: number,
    private readonly report: (detail: string) => void,
  ) {
    // logger is silent when the socket is missing at startup, so say it here.
    fs.stat(socketPath, (err, st) => {
      if (this.state === 'closed') return;
      if (err) this.report(`cannot use socket ${socketPath}: ${err.message}`);
      else if (!st.isSocket()) this.report(`${socketPath} is not a socket`);
    });
    this.start();
  }

  private start(): void {
    const args = [
      '--socket',
      this.socketPath,
      '--socket-errors=off',
      this.legacy ? '--rfc3164' : '--rfc5424=notq', // notq: no timeQuality data, as Python's "- -"
      '--tag',
      this.appName,
      `--id=${process.pid}`,
      '--prio-prefix',
      '--priority',
      'user.info', // only used for lines without a prefix; every line has one
      '--size',
      String(MAX_SYSLOG_MESSAGE_BYTES + 16), // room for "<PRI>" so logger never splits a line
    ];
    let child: ChildProcess;
    try {
      child = spawn(this.loggerPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    } catch (err) {
      this.died(undefined, `cannot run ${this.loggerPath}: ${errorText(err)}`);
      return;
    }
    this.child = child;
    this.state = 'running';
    let stderrText = '';
    child.on('error', (err) => this.died(child, `cannot run ${this.loggerPath}: ${err.message}`));
    // 'close' rather than 'exit': by then stderr has been read, so the report can quote it.
    child.on('close', (code, signal) => {
      const why = signal ? `signal ${signal}` : `code ${code}`;
      this.died(child, `${this.loggerPath} exited (${why})${stderrText ? `: ${stderrText}` : ''}`);
    });
    child.stdin?.on('error', () => {
      // EPIPE once logger has died; the exit handler reports it.
    });
    // Must be drained, or logger would block on a full pipe. Failures show up here ("send message failed").
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderrText.length < 1000) stderrText += chunk;
      const first = stderrText.split('\n')[0]?.trim();
      if (first && stderrText.includes('\n')) this.report(first);
    });
    setRef(child, false);
  }

  private died(child: ChildProcess | undefined, detail: string): void {
    if (this.state === 'closed' || this.child !== child) return;
    this.child = undefined;
    this.state = 'dead';
    this.retryAt = Date.now() + this.retryDelayMs;
    this.report(detail);
  }

  send(rec: LogRecord): void {
    if (this.state === 'dead' && Date.now() >= this.retryAt) this.start();
    const stdin = this.child?.stdin;
    if (this.state !== 'running' || !stdin || !stdin.writable) return;
    if (stdin.writableLength > MAX_PIPE_BACKLOG) {
      this.report(`${this.socketPath} is not keeping up; dropping messages`);
      return;
    }
    const pri = this.facility * 8 + rec.severity;
    stdin.write(Buffer.concat([Buffer.from(`<${pri}>`, 'latin1'), rec.bytes, Buffer.from('\n')]));
  }

  async end(): Promise<void> {
    const child = this.child;
    this.state = 'closed';
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const timeout = delay(END_TIMEOUT_MS);
    try {
      setRef(child, true);
      child.stdin?.end(); // EOF: logger sends what it has read and exits
      await Promise.race([exited, timeout.promise]);
    } finally {
      timeout.cancel();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
  }
}

/** Unreferenced, so logging never keeps the process alive; referenced again by end() to flush. */
function setRef(child: ChildProcess, ref: boolean): void {
  for (const handle of [child, child.stdin as net.Socket | null, child.stderr as net.Socket | null]) {
    if (!handle) continue;
    if (ref) handle.ref?.();
    else handle.unref?.();
  }
}
