import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.js';
import type { ProxyServer } from '../server/proxy.js';

/** Where scripts/build-native.mjs puts the addon (native/notify.c): dist/native/, beside the compiled dist/src/. */
const ADDON = fileURLToPath(new URL('../../native/notify.node', import.meta.url));

/** Fewest milliseconds between two `STATUS=` updates: a burst of sessions is one update, not one per session. */
export const STATUS_INTERVAL_MS = 1000;

interface NotifyAddon {
  /** Sends `message` as one datagram to the socket `path` (`@name`: abstract); 0 or the errno. */
  send(path: string, message: string): number;
}

/** The addon, or why it cannot be had (it was not built: the build's reason). */
function loadAddon(): NotifyAddon | string {
  try {
    return createRequire(import.meta.url)(ADDON) as NotifyAddon;
  } catch (err) {
    try {
      return fs.readFileSync(`${ADDON}.missing`, 'utf8').trim();
    } catch {
      return `${ADDON} cannot be loaded (${(err as Error).message}); run \`npm run build\`, which needs a C compiler`;
    }
  }
}

/**
 * What the proxy tells a service manager (systemd's `Type=notify`, sd_notify(3)) through the datagram
 * socket named by `NOTIFY_SOCKET`: `READY=1` once listening, `STATUS=` with the open sessions (at most
 * one update per {@link STATUS_INTERVAL_MS}), `STOPPING=1` when it stops. Sent from this process itself,
 * so that systemd's default `NotifyAccess=main` takes them; with `--workers` this is the primary, which
 * counts the workers' sessions.
 */
export class ServiceNotifier {
  private sessions = 0;
  private where = '';
  private ready = false;
  private stopped = false;
  private closed = false;
  private lastStatus = 0;
  private statusTimer: NodeJS.Timeout | undefined;
  private failed = false;

  private constructor(
    private readonly socket: string,
    private readonly addon: NotifyAddon,
    private readonly logger: Logger,
  ) {}

  /**
   * Follows `proxy` for the service manager named in `env.NOTIFY_SOCKET`, if any (call it before
   * `listen()`, so that workers are told to report their sessions). The variable is removed, so that
   * the wrapped program does not speak for the proxy.
   * @returns undefined when there is no service manager to tell, or nothing to tell it with (logged).
   */
  static follow(proxy: ProxyServer, logger: Logger, env: NodeJS.ProcessEnv = process.env): ServiceNotifier | undefined {
    const socket = env.NOTIFY_SOCKET;
    delete env.NOTIFY_SOCKET;
    if (!socket) return undefined;
    const addon = loadAddon();
    if (typeof addon === 'string') {
      logger.warn(
        { event: 'notify-unavailable', reason: addon },
        `NOTIFY_SOCKET is set, but the service manager cannot be told that the proxy is ready: ${addon}`,
      );
      return undefined;
    }
    const notifier = new ServiceNotifier(socket, addon, logger);
    proxy.on('listening', (where) => {
      notifier.where = where;
      notifier.ready = true;
      notifier.send(`READY=1\n${notifier.statusLine()}`);
      notifier.lastStatus = Date.now();
    });
    proxy.on('session-open', () => notifier.changed(1));
    proxy.on('session-close', () => notifier.changed(-1));
    // No session open anywhere: also right after a worker died with sessions whose ends were never told.
    proxy.on('idle', () => notifier.changed(-notifier.sessions));
    proxy.on('close', () => {
      notifier.stopping();
      // Stopped: the last count (due later) is sent now, and nothing is left to count after it.
      if (notifier.statusTimer) notifier.sendStatus();
      notifier.closed = true;
    });
    return notifier;
  }

  /**
   * Tells the service manager that the proxy is stopping (a drain counts); said once. The status goes on
   * counting the sessions a drain lets finish.
   */
  stopping(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.send('STOPPING=1');
  }

  private statusLine(): string {
    const state = this.stopped ? 'stopping' : `listening on ${this.where}`;
    return `STATUS=${this.sessions} session${this.sessions === 1 ? '' : 's'} open; ${state}`;
  }

  /** A session opened or closed: the status is sent now, or at the end of the interval. */
  private changed(by: number): void {
    if (by === 0) return;
    this.sessions += by;
    if (!this.ready || this.closed || this.statusTimer) return;
    const wait = this.lastStatus + STATUS_INTERVAL_MS - Date.now();
    if (wait <= 0) this.sendStatus();
    else {
      this.statusTimer = setTimeout(() => this.sendStatus(), wait);
      this.statusTimer.unref();
    }
  }

  /** Sends the status now (a later one that was due is then not needed). */
  private sendStatus(): void {
    clearTimeout(this.statusTimer);
    this.statusTimer = undefined;
    this.lastStatus = Date.now();
    this.send(this.statusLine());
  }

  private send(message: string): void {
    const errno = this.addon.send(this.socket, message);
    if (errno === 0) {
      this.logger.debug({ event: 'notify', message }, `told the service manager: ${message.replace(/\n/g, '; ')}`);
      return;
    }
    // Once: a service manager that is gone would otherwise be a line per session.
    if (this.failed) return;
    this.failed = true;
    const reason = `error ${errno}${errno === 2 ? ' (no such socket)' : errno === 111 ? ' (connection refused)' : ''}`;
    this.logger.warn(
      { event: 'notify-failed', socket: this.socket, errno },
      `cannot tell the service manager at ${this.socket} (${message.split('\n')[0]}): ${reason}`,
    );
  }
}
