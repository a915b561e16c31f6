import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { TargetSource } from '../admission/target-source.js';
import { RestartBackoff } from '../backoff.js';
import type { WrapConfig } from '../config.js';
import { StartupError } from '../errors.js';
import { exitStatus } from '../exit-status.js';
import type { Logger } from '../log/logger.js';
import type { Identity } from '../service/privileges.js';
import { formatHostPort } from '../targets/address.js';
import type { Target } from '../targets/target.js';
import { freeLoopbackPort, type LoopbackHost, loopbackListener } from './loopback.js';
import { locateShim, shimEnvironment } from './shim.js';
import { TOKEN_VARIABLE, Watchdog } from './watchdog.js';

/** How long a program has to listen before the warning. */
const LISTEN_WARNING_MS = 10_000;
/** How often the kernel's socket tables are read while waiting for the program to listen. */
const LISTEN_POLL_MS = 200;
/** Seconds between SIGTERM and SIGKILL when the program is stopped. */
const KILL_GRACE_SECONDS = 5;
/** Longest output line logged as one; longer ones are split, so that output without newlines stays bounded. */
const MAX_LINE = 8192;

/** The absolute path of `command` as execvp would find it, or undefined. */
function findCommand(command: string): string | undefined {
  const executable = (file: string): boolean => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return executable(command) ? path.resolve(command) : undefined;
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const file = path.resolve(dir || '.', command);
    if (executable(file)) return file;
  }
  return undefined;
}

/**
 * A program run behind the proxy (`websockify PORT -- PROGRAM ARGS`), its port moved to loopback by
 * the bind() shim. It runs in a session and process group of its own; its output goes to the proxy's
 * log, a line at a time, prefixed with its name and pid; its stdin is /dev/null.
 *
 * It never outlives the proxy: a {@link Watchdog} stops it when the proxy stops or dies, and the shim
 * gives the direct child a parent-death signal as well.
 */
export class WrappedProgram implements TargetSource {
  /** The loopback port the program's listening socket is moved to. */
  readonly port: number;
  /** 127.0.0.1 until the program is seen listening on ::1 (an IPv6 bind). */
  private host: LoopbackHost = '127.0.0.1';
  private onListening: (host: LoopbackHost) => void = () => undefined;
  /** In `exit` mode, the program's exit status once it has exited by itself. */
  status: number | undefined;
  private readonly name: string;
  private readonly token = randomBytes(16).toString('hex');
  private readonly watchdog = new Watchdog(this.token, KILL_GRACE_SECONDS);
  private child: ChildProcess | undefined;
  private oldPort = 0;
  private onExit: (status: number) => void = () => undefined;
  private stopping = false;
  private startedAt = 0;
  /** `respawn` mode's delays: a run of 10 s counts as healthy; quick deaths double 250 ms, up to 30 s. */
  private readonly backoff = new RestartBackoff({ initialMs: 250, maxMs: 30_000, healthyMs: 10_000 });
  private restarts = 0;
  private respawnTimer: NodeJS.Timeout | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private identity: Identity | undefined;

  private constructor(
    private readonly config: WrapConfig,
    private readonly logger: Logger,
    private readonly shim: string,
    private readonly executable: string,
    port: number,
  ) {
    this.port = port;
    this.name = path.basename(config.command);
  }

  /**
   * Checks what wrapping needs (the built shim, the program) and picks the loopback port, before the
   * proxy listens.
   * @throws StartupError naming what is missing (the shim's message names the package to install).
   */
  static async prepare(config: WrapConfig, logger: Logger): Promise<WrappedProgram> {
    const shim = locateShim();
    const executable = findCommand(config.command);
    if (!executable) throw new StartupError(`cannot wrap ${config.command}: command not found or not executable`);
    return new WrappedProgram(config, logger, shim, executable, await freeLoopbackPort());
  }

  /** Every connection goes to the program's moved port. */
  targetFor(): Target {
    return { kind: 'tcp', host: this.host, port: this.port };
  }

  /** The loopback address the program listens on: 127.0.0.1 until it is seen on ::1. */
  get loopbackHost(): LoopbackHost {
    return this.host;
  }

  /** For the listening line. */
  describe(): string {
    return `the wrapped program '${this.commandLine}' on loopback port ${this.port}`;
  }

  /** Stops the program when the proxy stops. */
  close(): Promise<void> {
    return this.stop();
  }

  /**
   * Runs the program as `identity` (`--user`) from its next start: the proxy's own process may have
   * given up root already (then the program inherits that), or keep it (the primary of `--workers`).
   */
  runAs(identity: Identity): void {
    this.identity = identity;
  }

  /** The command line, for log lines. */
  get commandLine(): string {
    return [this.config.command, ...this.config.args].join(' ');
  }

  /**
   * Starts the program, which is to bind `oldPort` (the proxy's listening port).
   * @param onExit called in `exit` mode when the program exits by itself, with its status.
   * @param onListening called each time the program is seen listening, with the loopback address.
   */
  start(oldPort: number, onExit: (status: number) => void, onListening?: (host: LoopbackHost) => void): void {
    this.oldPort = oldPort;
    this.onExit = onExit;
    if (onListening) this.onListening = onListening;
    this.spawnProgram();
  }

  /** Stops the program and everything it started: SIGTERM, then SIGKILL after a grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.respawnTimer);
    clearTimeout(this.listenTimer);
    const running = this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    if (running) this.logger.info({ event: 'program-stopping', pid: this.child!.pid }, `stopping ${this.name} (pid ${this.child!.pid})`);
    await this.watchdog.finish();
  }

  private spawnProgram(): void {
    this.startedAt = Date.now();
    const env = {
      ...shimEnvironment(process.env, this.shim, { oldPort: this.oldPort, newPort: this.port, parentPid: process.pid }),
      [TOKEN_VARIABLE]: this.token,
    };
    // detached: a session and process group of its own, so that the watchdog can stop the group and a
    // terminal's Ctrl-C reaches the proxy alone, which stops the program after its sessions.
    const child = spawn(this.executable, this.config.args, {
      argv0: this.config.command,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      // Still root (the primary of --workers): the child clears its groups and changes group, then user.
      ...(this.identity && process.geteuid?.() === 0 ? { uid: this.identity.uid, gid: this.identity.gid } : {}),
    });
    this.child = child;
    let ended = false;
    const end = (status: number): void => {
      if (ended) return;
      ended = true;
      this.exited(child, status);
    };
    child.once('exit', (code, signal) => end(exitStatus(code, signal)));
    child.once('error', (err) => {
      this.logger.error({ event: 'program-error', err: err.message }, `cannot run ${this.commandLine}: ${err.message}`);
      // No process came of it: as a shell does, status 127.
      if (child.pid === undefined) end(127);
    });
    if (child.pid === undefined) return;
    this.watchdog.track(child.pid);
    this.logOutput(child.stdout!, 'stdout', child.pid);
    this.logOutput(child.stderr!, 'stderr', child.pid);
    this.logger.info(
      {
        event: 'program-start',
        pid: child.pid,
        command: this.commandLine,
        port: this.oldPort,
        moved: this.port,
        restart: this.restarts,
      },
      `started ${this.commandLine} (pid ${child.pid}); its port ${this.oldPort} is moved to loopback port ${this.port}`,
    );
    this.watchListening(child);
  }

  private exited(child: ChildProcess, status: number): void {
    this.watchdog.forget();
    if (this.stopping) {
      this.logger.info({ event: 'program-exit', pid: child.pid, status }, `${this.name} (pid ${child.pid}) stopped (status ${status})`);
      return;
    }
    const ran = Date.now() - this.startedAt;
    const lasted = `${(ran / 1000).toFixed(1)} s`;
    if (this.config.mode === 'exit') {
      this.logger.info(
        { event: 'program-exit', pid: child.pid, status },
        `${this.name} (pid ${child.pid}) exited with status ${status} after ${lasted}: stopping (--wrap-mode exit)`,
      );
      this.status = status;
      this.onExit(status);
    } else if (this.config.mode === 'ignore') {
      this.logger.info(
        { event: 'program-exit', pid: child.pid, status },
        `${this.name} (pid ${child.pid}) exited with status ${status} after ${lasted}; still serving (--wrap-mode ignore)`,
      );
    } else {
      const delay = this.backoff.next(ran);
      this.restarts++;
      clearTimeout(this.listenTimer);
      this.logger.info(
        { event: 'program-respawn', pid: child.pid, status, delay: delay / 1000, restart: this.restarts },
        `${this.name} (pid ${child.pid}) exited with status ${status} after ${lasted}; restart ${this.restarts} in ${delay / 1000} s (--wrap-mode respawn)`,
      );
      this.respawnTimer = setTimeout(() => this.spawnProgram(), delay);
    }
  }

  /** Logs each line the program writes, prefixed with its name and pid. */
  private logOutput(stream: Readable, name: 'stdout' | 'stderr', pid: number): void {
    let pending = '';
    const log = (line: string): void =>
      this.logger.info({ event: 'program-output', pid, stream: name, line }, `[${this.name} ${pid}] ${line}`);
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      pending += text;
      for (;;) {
        const newline = pending.indexOf('\n');
        if (newline >= 0 && newline <= MAX_LINE) {
          log(pending.slice(0, newline).replace(/\r$/, ''));
          pending = pending.slice(newline + 1);
        } else if (pending.length >= MAX_LINE) {
          log(pending.slice(0, MAX_LINE));
          pending = pending.slice(MAX_LINE);
        } else break;
      }
    });
    stream.on('end', () => {
      if (pending) log(pending);
    });
  }

  /**
   * Waits for the moved socket to appear, to learn its address family and to warn when it does not:
   * after the warning it keeps watching, since a slow program may still get there.
   */
  private watchListening(child: ChildProcess): void {
    clearTimeout(this.listenTimer);
    const since = Date.now();
    let warned = false;
    const check = (): void => {
      const host = loopbackListener(this.port);
      if (host) {
        this.host = host;
        this.onListening(host);
        this.logger.info(
          { event: 'program-listening', pid: child.pid, host, port: this.port },
          `${this.name} listens on ${formatHostPort(host, this.port)} (its port ${this.oldPort})`,
        );
        return;
      }
      if (!warned && Date.now() - since >= LISTEN_WARNING_MS) {
        warned = true;
        this.logger.warn({ event: 'program-not-listening', pid: child.pid, port: this.oldPort }, this.notListening(child));
      }
      if (!this.stopping) this.listenTimer = setTimeout(check, warned ? 1000 : LISTEN_POLL_MS);
    };
    this.listenTimer = setTimeout(check, LISTEN_POLL_MS);
  }

  /** The warning for a program that has not listened in time, with the likely cause. */
  private notListening(child: ChildProcess): string {
    const head = `${this.name} has not listened on port ${this.oldPort} within ${LISTEN_WARNING_MS / 1000} s, so WebSocket connections have nowhere to go`;
    let maps: string | undefined;
    try {
      if (child.exitCode === null && child.signalCode === null) maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8');
    } catch {
      // gone meanwhile
    }
    if (maps !== undefined && !maps.includes(this.shim)) {
      return `${head}: the bind() shim is not loaded in it (pid ${child.pid}), most likely because it is statically linked (or set-user-ID), and LD_PRELOAD cannot move the port of such a program`;
    }
    return (
      `${head}. Likely causes: it listens on another port than ${this.oldPort} (the shim moves only binds to port ${this.oldPort}), ` +
      `it binds in a process without the shim (statically linked, or started with a cleared environment), or it is still starting`
    );
  }
}
