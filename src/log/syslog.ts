/**
 * `--syslog SERVER` / `--legacy-syslog`: log records as syslog messages, over UDP or through a local
 * Unix socket such as /dev/log.
 *
 * Message layout follows Python websockify's WebsockifySysLogHandler: RFC 5424 by default
 * (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, UTF-8 text marked with a BOM), no trailing
 * newline on datagrams, newlines inside a message turned into spaces, empty messages skipped.
 * The legacy (RFC 3164) form carries the full BSD header, `<PRI>Mmm dd hh:mm:ss HOSTNAME APP[PID]: MSG`.
 * Delivery problems are reported once and never thrown: logging must not stop the proxy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatHostPort, portFromText, splitHostPort } from '../targets/address.js';

/** How syslog messages are written. */
export interface SyslogOptions {
  /** RFC 3164 (`--legacy-syslog`) instead of RFC 5424. */
  legacy: boolean;
  /** `user`, or `daemon` when detached (as Python websockify with --daemon). */
  facility: 'user' | 'daemon';
  /** Receives the single delivery-problem report; default writes one line to stderr. */
  onError?: (message: string) => void;
  /** The util-linux `logger` used for Unix sockets; default '/usr/bin/logger' if present, else 'logger' on PATH. */
  loggerPath?: string;
  /** How long after a failure the UDP server is looked up again or `logger` restarted; default 5000 ms. */
  retryDelayMs?: number;
}

/** Where syslog messages go, as parsed from `--syslog SERVER`. */
export type SyslogServer = { kind: 'udp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Sends log records to one syslog server. */
export interface Syslog {
  /** Sends one record: pino level number, time in ms since the epoch, message text. Never throws. */
  send(level: number, time: number, msg: string): void;
  /** Sends what is still queued (waiting at most 2 s), then closes the socket or `logger`; once is enough. */
  end(): Promise<void>;
}

/** A way to the server: frames and sends messages, drops them while the server is out of reach. */
interface Sender {
  send(pri: number, time: number, body: Buffer): void;
  end(): Promise<void>;
}

const APP_NAME = 'websockify';
/** Message text is cut to this many bytes: keeps UDP datagrams sendable and `logger` from splitting lines. */
const MAX_MESSAGE_BYTES = 8192;
/** UDP datagrams that may wait (for the name lookup, or in libuv for the kernel); more are dropped. */
const MAX_QUEUED = 1000;
/** Bytes that may wait in the pipe to `logger`; more messages are dropped. */
const MAX_PIPE_BACKLOG = 1 << 20;

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
  return { kind: 'udp', host, port: portText === undefined ? 514 : parsePort(portText, bad) };
}
function parsePort(text: string, bad: (why: string) => Error): number {
  if (text === '') throw bad("the port after ':' is missing");
  const port = portFromText(text);
  if (port === undefined) throw bad(`port "${text}" is not a number from 1 to 65535`);
  return port;
}

/**
 * Opens the way to SERVER (a bad one throws here, as in parseSyslogServer). Its sockets and child
 * process never keep the Node process alive.
 */
export function createSyslog(server: string, options: SyslogOptions): Syslog {
  const target = parseSyslogServer(server);
  const facility = options.facility === 'daemon' ? 3 : 1;
  let reported = false;
  // Only the first problem: an unreachable server would otherwise flood stderr once per log line.
  const report = (detail: string): void => {
    if (reported) return;
    reported = true;
    const message = `syslog: ${detail}; syslog messages may be lost, further syslog errors are not reported`;
    if (options.onError) options.onError(message);
    else process.stderr.write(`websockify: ${message}\n`);
  };
  const sender = target.kind === 'udp' ? udpSender(target.host, target.port, options, report) : loggerSender(target.path, options, report);
  let ended = false;
  return {
    send(level, time, msg) {
      // One message per datagram/line: line breaks would split it (and NUL ends a C string in logger).
      const text = msg.replace(/\r\n|[\r\n\0]/g, ' ');
      if (ended || text === '') return;
      // Like Python: plain ASCII as is, else UTF-8 with a BOM, which RFC 5424 uses to mark UTF-8.
      // RFC 3164 has no such marker and old daemons would show the BOM as junk.
      const bom = !options.legacy && /[^\p{ASCII}]/u.test(text) ? '\ufeff' : '';
      try {
        sender.send(facility * 8 + severity(level), time, truncateUtf8(Buffer.from(bom + text), MAX_MESSAGE_BYTES));
      } catch (err) {
        report(`cannot send a message: ${(err as Error).message}`);
      }
    },
    async end() {
      if (ended) return;
      ended = true;
      await sender.end();
    },
  };
}

/** pino level to syslog severity, as Python's mapPriority; fatal is critical, as Python's CRITICAL. */
function severity(level: number): number {
  if (level < 30) return 7; // trace, debug
  if (level < 40) return 6; // info
  if (level < 50) return 4; // warn
  return level < 60 ? 3 : 2;
}

/** Cuts at a character boundary so the receiver never sees half a UTF-8 sequence. */
function truncateUtf8(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/** Resolves when `wait` calls back, or after 2 s; the timer keeps the process alive meanwhile. */
function endWithin2s(wait: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    wait(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Whole messages to host:port over one connected UDP socket. The name is looked up once, not per
 * message as Python does, and the socket is connected so that ICMP "port unreachable" comes back
 * as ECONNREFUSED and gets reported. After a failed lookup, the first message after the retry delay
 * looks again; messages in between are dropped. libuv sends at once what the kernel takes, so only
 * messages waiting for the lookup need flushing at the end.
 */
function udpSender(host: string, port: number, options: SyslogOptions, report: (detail: string) => void): Sender {
  const where = formatHostPort(host, port);
  const hostname = os.hostname().replace(/[^\x21-\x7e]/g, '_') || '-';
  let socket: dgram.Socket | undefined; // once connected
  let waiting: Buffer[] | undefined; // while looking up and connecting
  let settled: (() => void) | undefined; // end() waiting for the lookup
  let retryAt = 0;
  let closed = false;

  const failed = (detail: string): void => {
    report(detail);
    retryAt = Date.now() + (options.retryDelayMs ?? 5000);
    waiting = undefined;
    settled?.();
  };
  const connect = (): void => {
    waiting = [];
    dns.lookup(host, (lookupError, address, family) => {
      if (closed) return;
      if (lookupError) return failed(`cannot resolve ${host}: ${lookupError.message}`);
      const udp = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      udp.unref();
      // Without a callback, send errors (such as ECONNREFUSED) come as 'error' events.
      udp.on('error', (err) => report(`cannot send to ${where}: ${err.message}`));
      udp.connect(port, address, (connectError?: Error) => {
        if (closed || connectError) udp.close();
        if (closed) return;
        if (connectError) return failed(`cannot connect to ${where}: ${connectError.message}`);
        socket = udp;
        for (const datagram of waiting ?? []) udp.send(datagram);
        waiting = undefined;
        settled?.();
      });
    });
  };
  connect();

  return {
    send(pri, time, body) {
      if (!socket && !waiting && Date.now() >= retryAt) connect();
      // Bounded: libuv queues what the kernel cannot take yet.
      const queued = socket ? socket.getSendQueueCount() : (waiting?.length ?? 0);
      if (queued >= MAX_QUEUED) return report(`${where} is not keeping up; dropping messages`);
      // Framed now, so that a message waiting for the lookup keeps its own time.
      const head = options.legacy
        ? `<${pri}>${bsdTimestamp(time)} ${hostname} ${APP_NAME}[${process.pid}]: `
        : `<${pri}>1 ${new Date(time).toISOString()} ${hostname} ${APP_NAME} ${process.pid} - - `;
      const datagram = Buffer.concat([Buffer.from(head), body]);
      if (socket) socket.send(datagram);
      else waiting?.push(datagram);
    },
    async end() {
      if (waiting) await endWithin2s((done) => (settled = done));
      closed = true;
      socket?.close();
    },
  };
}

/** RFC 3164 TIMESTAMP, 'Mmm dd hh:mm:ss' in local time, day padded by a space: cut from Date's fixed toString(). */
function bsdTimestamp(ms: number): string {
  const local = new Date(ms).toString(); // 'Www Mmm dd yyyy hh:mm:ss GMT...'
  return `${local.slice(4, 8)}${local.slice(8, 10).replace(/^0/, ' ')}${local.slice(15, 24)}`;
}

/**
 * Node cannot send to a Unix datagram socket, so a long-lived util-linux `logger` does it: one
 * message per stdin line, priority per line via --prio-prefix, and --id to show our PID rather
 * than logger's. With --socket-errors=off it keeps running when the socket goes away and
 * reconnects by itself on the next message, and it falls back to a stream socket where the
 * server is one. logger writes the header itself, in the same layout as UDP (its timestamp is
 * when it reads the line). When logger dies, the first message after the retry delay restarts it.
 */
function loggerSender(socketPath: string, options: SyslogOptions, report: (detail: string) => void): Sender {
  const loggerPath = options.loggerPath ?? (fs.existsSync('/usr/bin/logger') ? '/usr/bin/logger' : 'logger');
  const args = [
    ...['--socket', socketPath, '--socket-errors=off', '--prio-prefix', `--id=${process.pid}`, '--tag', APP_NAME],
    options.legacy ? '--rfc3164' : '--rfc5424=notq', // notq: no timeQuality data, as Python's "- -"
    ...['--size', String(MAX_MESSAGE_BYTES + 16)], // room for "<PRI>" so logger never splits a line
  ];
  let child: ChildProcess | undefined;
  let retryAt = 0;

  const died = (which: ChildProcess | undefined, detail: string): void => {
    if (child !== which) return; // end() stopped it, or already reported ('error' then 'close')
    child = undefined;
    retryAt = Date.now() + (options.retryDelayMs ?? 5000);
    report(detail);
  };
  const start = (): void => {
    let started: ChildProcess;
    try {
      started = spawn(loggerPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    } catch (err) {
      died(undefined, `cannot run ${loggerPath}: ${(err as Error).message}`);
      return;
    }
    child = started;
    // Unreferenced, so logging never keeps the process alive.
    for (const handle of [started, started.stdin as net.Socket | null, started.stderr as net.Socket | null]) handle?.unref();
    // Read, or logger could block on a full pipe; quoted when it exits (e.g. an option it lacks).
    let stderr = '';
    started.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(0, 1000)));
    started.stdin?.on('error', () => {}); // EPIPE once logger has died; 'close' reports that
    started.on('error', (err) => died(started, `cannot run ${loggerPath}: ${err.message}`));
    started.on('close', (code, signal) => {
      died(started, `${loggerPath} exited (${signal ? `signal ${signal}` : `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`);
    });
  };
  // logger is silent about a missing socket, so say it here.
  fs.stat(socketPath, (err, st) => {
    if (err) report(`cannot use socket ${socketPath}: ${err.message}`);
    else if (!st.isSocket()) report(`${socketPath} is not a socket`);
  });
  start();

  return {
    send(pri, _time, body) {
      if (!child && Date.now() >= retryAt) start();
      const stdin = child?.stdin;
      if (!stdin?.writable) return;
      if (stdin.writableLength > MAX_PIPE_BACKLOG) report(`${socketPath} is not keeping up; dropping messages`);
      else stdin.write(Buffer.concat([Buffer.from(`<${pri}>`), body, Buffer.from('\n')]));
    },
    async end() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      // EOF: logger sends what it has read and exits.
      await endWithin2s((done) => {
        running.once('close', done);
        running.stdin?.end();
      });
      if (running.exitCode === null && running.signalCode === null) running.kill('SIGTERM');
    },
  };
}
