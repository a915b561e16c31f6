import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RestartBackoff } from '../backoff.js';
import type { ListenSpec, ProxyConfig } from '../config.js';
import { StartupError } from '../errors.js';
import { exitStatus } from '../exit-status.js';
import { PrimaryLimits, sharesLimits } from '../limits/cluster-limits.js';
import type { Logger, LogOptions } from '../log/logger.js';
import type { ClusterMetricsGatherer } from '../metrics/cluster.js';
import type { MetricsListener } from '../metrics/listener.js';
import type { PrimaryMetrics } from '../metrics/registry.js';
import type { ProxyOptions } from '../options.js';
import { Lifecycle } from '../server/lifecycle.js';
import type { ProxyEvents, ProxyServer } from '../server/proxy.js';
import { checkCanSwitch, lookupIdentity } from '../service/privileges.js';
import { WrappedProgram } from '../wrap/program.js';
import { type Balance, chooseBalance } from './balance.js';
import { ID_BLOCK, type PrimaryMessage, WORKER_INIT_VARIABLE, type WorkerInit, type WorkerMessage } from './messages.js';

/** The script each worker runs. */
const WORKER_SCRIPT = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** How long past the shutdown timeout a stopping worker has before it is killed. */
const KILL_GRACE_MS = 5000;

/** One worker's place: its number stays when a replacement takes over. */
interface Slot {
  index: number;
  worker: Worker | undefined;
  /** The highest session number the worker in this place may have given; a replacement goes on after it. */
  reservedUpTo: number;
  /** Whether the worker has open sessions (it says busy, then idle). */
  busy: boolean;
  startedAt: number;
  backoff: RestartBackoff;
  respawnTimer: NodeJS.Timeout | undefined;
}

/**
 * The proxy as N worker processes serving one port (`--workers`). This primary process serves no
 * connection itself: it starts the workers (node:cluster), replaces one that dies (with backoff), runs
 * the wrapped program once for all, keeps the clocks (`--timeout`, `--idle-timeout`, `--drain-timeout`)
 * over all workers' sessions, and passes reloads and stops on. Workers exit when it dies, even by SIGKILL
 * (node:cluster ends a worker whose IPC channel closes).
 *
 * One per process: node:cluster's settings are the process's.
 */
export class ProxyCluster extends EventEmitter<ProxyEvents> implements ProxyServer {
  /** Resolves when every worker has stopped and the wrapped program is released. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly slots: Slot[];
  private readonly lifecycle: Lifecycle;
  private readonly limits: PrimaryLimits | undefined;
  private readonly balance: Balance;
  private readonly cwd = process.cwd();
  private listenSpec: ListenSpec;
  private program: WrappedProgram | undefined;
  private where: string | undefined;
  /** `--metrics-listen`: the primary's own metrics, the workers' gathered on each scrape, and the listener. */
  private metrics: { own: PrimaryMetrics; gatherer: ClusterMetricsGatherer; listener: MetricsListener } | undefined;
  private started = false;
  private stopping = false;
  private accepting = true;

  /**
   * @param options the options as given (each worker resolves them again: they must name plugins, not pass objects).
   * @param config the same options resolved.
   * @param log where workers log (each opens its own sinks).
   * @param logger where this primary logs.
   */
  constructor(
    private readonly options: ProxyOptions,
    private readonly config: ProxyConfig,
    private readonly log: LogOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.listenSpec = config.listen;
    this.balance = chooseBalance(config.listen);
    this.slots = Array.from({ length: config.workers }, (_, i) => ({
      index: i + 1,
      worker: undefined,
      reservedUpTo: i + 1 - config.workers,
      busy: false,
      startedAt: 0,
      // A worker that lived a minute was healthy; one that dies at once is retried at 0.5, 1, 2 ... 30 s.
      backoff: new RestartBackoff({ initialMs: 250, maxMs: 30_000, healthyMs: 60_000 }),
      respawnTimer: undefined,
    }));
    // Counts and bans for the whole group, only when a limit needs them.
    this.limits = sharesLimits(config.limits) ? new PrimaryLimits(config.limits, logger, (message) => this.broadcast(message)) : undefined;
    this.lifecycle = new Lifecycle(
      config,
      {
        stopAccepting: () => this.stopAccepting(),
        stop: (why) => void this.close(why),
        sessions: () => this.slots.filter((slot) => slot.busy).length,
      },
      logger,
    );
  }

  /** Where the workers listen, once they do. */
  get address(): string | undefined {
    return this.where;
  }

  /** With `metricsListen`: where the metrics are served, once they are. */
  get metricsAddress(): string | undefined {
    return this.metrics?.listener.address;
  }

  /** With a wrapped program in `exit` mode: its exit status, once it has exited by itself. */
  get programStatus(): number | undefined {
    return this.program?.status;
  }

  /** Whether the proxy is draining or stopping (not ready for new sessions). */
  get draining(): boolean {
    return this.stopping || this.lifecycle.draining;
  }

  /**
   * Starts the workers: the first alone (it learns the port when 0 was asked for), then the others; then
   * the wrapped program.
   * @returns where they listen.
   * @throws StartupError when a worker cannot start (its reason); every worker is stopped then.
   */
  async listen(): Promise<string> {
    if (this.started) throw new Error('listen() was called already; create another proxy to listen again');
    this.started = true;
    const { config, logger } = this;
    // The workers give up root once bound; this process keeps it, to start replacements that bind and
    // read the key as the first ones did (docs/DEPLOYMENT.md). Checked here, so that a bad user is one error.
    const identity = config.runAs && lookupIdentity(config.runAs);
    if (identity) checkCanSwitch(identity);
    await this.openMetrics();
    try {
      this.program = config.wrap && (await WrappedProgram.prepare(config.wrap, logger));
    } catch (err) {
      await this.metrics?.listener.close();
      throw err;
    }
    if (identity) this.program?.runAs(identity);
    cluster.setupPrimary({ exec: WORKER_SCRIPT, args: [], silent: false });
    const listen = config.listen;
    // With round robin this process creates the Unix socket: with the final mode at once, as one process would.
    const restoreUmask = listen.kind === 'unix' ? process.umask(0o777 & ~listen.mode) : undefined;
    let address: string;
    try {
      const [first, ...others] = this.slots;
      address = await this.startWorker(first!);
      // SO_REUSEPORT sockets join the first one's port. Round robin shares one socket, which node:cluster
      // finds by the address asked for: the others must ask for port 0 as well.
      if (listen.kind === 'tcp' && listen.port === 0 && this.balance === 'reuse-port') {
        this.listenSpec = { ...listen, port: Number(/:(\d+)$/.exec(address)?.[1]) };
      }
      await Promise.all(others.map((slot) => this.startWorker(slot)));
    } catch (err) {
      await this.stopWorkers('a worker could not start');
      await this.program?.close();
      await this.metrics?.listener.close();
      throw err;
    } finally {
      if (restoreUmask !== undefined) process.umask(restoreUmask);
    }
    this.where = address;
    const balance = this.balance === 'reuse-port' ? 'SO_REUSEPORT' : 'round robin';
    const pids = this.live().map((worker) => worker.process.pid);
    logger.info(
      { event: 'listening', listen: address, workers: this.slots.length, pids, balance: this.balance },
      `listening on ${address} with ${this.slots.length} workers (pids ${pids.join(', ')}; ${balance})`,
    );
    this.program?.start(
      Number(/:(\d+)$/.exec(address)?.[1]),
      (status) => void this.close(`${config.wrap?.command} exited with status ${status}`),
      (host) => this.broadcast({ type: 'program-host', host }),
    );
    this.lifecycle.started();
    this.emit('listening', address);
    return address;
  }

  /**
   * Graceful stop: every worker closes its sessions with 1001 after what is in flight (cut after the
   * shutdown timeout) and exits; then the wrapped program is stopped. Resolves {@link closed}.
   */
  async close(why = 'closed by the program'): Promise<void> {
    if (this.stopping) return this.closed;
    this.stopping = true;
    this.lifecycle.dispose();
    this.logger.info({ event: 'stopping', reason: why, workers: this.live().length }, `stopping (${why}); stopping the workers`);
    await this.stopWorkers(why);
    await Promise.resolve(this.program?.close()).catch((err: Error) =>
      this.logger.warn({ event: 'target-source-close', err: err.message }, `closing the target source: ${err.message}`),
    );
    await this.metrics?.listener.close();
    this.logger.info({ event: 'stopped' }, 'stopped');
    this.resolveClosed();
    this.emit('close');
  }

  /**
   * Drain, then stop (SIGTERM): every worker stops accepting at once; open sessions go on for up to
   * `drainTimeout` seconds, or until the last one ends; then {@link close}. Resolves {@link closed}.
   */
  drain(why = 'drained by the program'): Promise<void> {
    if (!this.stopping) this.lifecycle.drain(why);
    return this.closed;
  }

  /** Every worker reads the TLS certificate and key again (SIGHUP). */
  reloadTls(why: string): void {
    this.broadcast({ type: 'reload-tls', why });
  }

  /** Every worker closes its listener; open sessions go on. */
  stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.broadcast({ type: 'stop-accepting' });
  }

  /**
   * `--metrics-listen`: opens the listener before the workers start (so /readyz says 503 until they
   * listen); each scrape asks the workers for their metrics and adds the primary's.
   */
  private async openMetrics(): Promise<void> {
    const listen = this.config.metricsListen;
    if (!listen) return;
    const [{ PrimaryMetrics }, { ClusterMetricsGatherer }, { openMetricsListener }] = await Promise.all([
      import('../metrics/registry.js'),
      import('../metrics/cluster.js'),
      import('../metrics/listener.js'),
    ]);
    const own = new PrimaryMetrics(() => this.live().length);
    const gatherer = new ClusterMetricsGatherer(own.registry);
    const ask = (worker: Worker, id: number): void => void worker.send({ type: 'metrics-request', id } satisfies PrimaryMessage);
    const listener = await openMetricsListener(
      listen,
      {
        collect: async () => ({
          contentType: own.registry.contentType,
          text: await gatherer.collect(
            this.live().filter((worker) => worker.isConnected()),
            ask,
          ),
        }),
        ready: () => this.where !== undefined && !this.draining,
      },
      this.logger,
    );
    this.metrics = { own, gatherer, listener };
  }

  /** The workers alive now. */
  private live(): Worker[] {
    return this.slots.flatMap((slot) => (slot.worker && !slot.worker.isDead() ? [slot.worker] : []));
  }

  private broadcast(message: PrimaryMessage): void {
    for (const worker of this.live()) if (worker.isConnected()) worker.send(message);
  }

  /** Tells every worker to stop gracefully and waits for their exits, killing those past the shutdown timeout. */
  private async stopWorkers(why: string): Promise<void> {
    for (const slot of this.slots) clearTimeout(slot.respawnTimer);
    const workers = this.live();
    const exits = workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve)));
    this.broadcast({ type: 'close', why });
    const kill = setTimeout(
      () => {
        for (const worker of this.live()) {
          this.logger.warn(
            { event: 'worker-kill', pid: worker.process.pid },
            `worker pid ${worker.process.pid} did not stop in time: killing it`,
          );
          worker.process.kill('SIGKILL');
        }
      },
      this.config.shutdownTimeout * 1000 + KILL_GRACE_MS,
    );
    await Promise.all(exits);
    clearTimeout(kill);
  }

  /**
   * Forks the worker of `slot`.
   * @returns where it listens, once it does.
   * @throws StartupError when it reports a failure or exits before it listens.
   */
  private startWorker(slot: Slot): Promise<string> {
    const { listen } = this.config;
    const init: WorkerInit = {
      // A socket systemd passed is gone from this process's environment: named for the workers.
      options: listen.kind === 'fd' ? { ...this.options, listenFd: listen.fd } : this.options,
      log: this.log,
      cwd: this.cwd,
      index: slot.index,
      count: this.slots.length,
      firstId: slot.reservedUpTo + this.slots.length,
      listen: this.listenSpec,
      reusePort: this.balance === 'reuse-port',
      joining: this.live().length > 0,
      sessionOpen: this.listenerCount('session-open') > 0,
      sessionClose: this.listenerCount('session-close') > 0,
      program: this.program && { host: this.program.loopbackHost, port: this.program.port, description: this.program.describe() },
    };
    const worker = cluster.fork({ [WORKER_INIT_VARIABLE]: JSON.stringify(init) });
    slot.worker = worker;
    // A message sent as the worker exits fails with EPIPE (its exit is handled below); unheard, the error
    // would end the primary.
    worker.on('error', (err) =>
      this.logger.debug({ event: 'worker-ipc-error', worker: slot.index, err: err.message }, `worker ${slot.index}: ${err.message}`),
    );
    const reply = (message: PrimaryMessage): void => {
      if (worker.isConnected()) worker.send(message);
    };
    // Its first block needs no announcement.
    slot.reservedUpTo = init.firstId + (ID_BLOCK - 1) * this.slots.length;
    slot.startedAt = Date.now();
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: WorkerMessage) => {
        if (this.limits?.heard(worker.id, message, reply)) return;
        if (message.type === 'listening') {
          listening = true;
          // The bans in force, now that it hears messages (a replacement starts with them).
          this.limits?.welcome(reply);
          // The first workers' pids are in the start-up line; a replacement's is news.
          const level = this.where === undefined ? 'debug' : 'info';
          this.logger[level](
            { event: 'worker-listening', worker: slot.index, pid: worker.process.pid },
            `worker ${slot.index} (pid ${worker.process.pid}) listens`,
          );
          resolve(message.address);
        } else if (message.type === 'failed') {
          reject(new StartupError(message.message));
        } else if (message.type === 'metrics') {
          this.metrics?.gatherer.answered(worker, message.id, message.metrics);
        } else {
          this.heard(slot, message);
        }
      });
      worker.once('exit', (code, signal) => {
        const status = exitStatus(code, signal as NodeJS.Signals | null);
        if (!listening) reject(new StartupError(`worker ${slot.index} exited with status ${status} before it listened`));
        this.limits?.exited(worker.id);
        this.exited(slot, worker, status);
      });
    });
  }

  /** A worker's news of its sessions. */
  private heard(slot: Slot, message: WorkerMessage): void {
    switch (message.type) {
      case 'busy':
        slot.busy = true;
        if (!this.stopping) this.lifecycle.opened();
        return;
      case 'reserve':
        slot.reservedUpTo = message.upTo;
        return;
      case 'session-open':
        this.emit('session-open', message.info);
        return;
      case 'session-close':
        this.emit('session-close', message.info);
        return;
      case 'idle':
        this.becameIdle(slot);
    }
  }

  /** A worker has no session open any more (it said so, or it died): maybe none has. */
  private becameIdle(slot: Slot): void {
    if (!slot.busy) return;
    slot.busy = false;
    if (this.slots.some((other) => other.busy)) return;
    if (!this.stopping) this.lifecycle.idle();
    this.emit('idle');
  }

  /** A worker exited: when it was not asked to, it is logged and replaced after its backoff delay. */
  private exited(slot: Slot, worker: Worker, status: number): void {
    if (slot.worker === worker) slot.worker = undefined;
    this.metrics?.gatherer.gone(worker);
    this.becameIdle(slot);
    // Failures while starting are listen()'s to report.
    if (this.stopping || this.where === undefined) return;
    const ran = Date.now() - slot.startedAt;
    const lasted = `${(ran / 1000).toFixed(1)} s`;
    const pid = worker.process.pid;
    if (!this.accepting) {
      this.logger.warn(
        { event: 'worker-exit', worker: slot.index, pid, status },
        `worker ${slot.index} (pid ${pid}) exited with status ${status} after ${lasted}; not replaced, as no new connections are accepted`,
      );
      return;
    }
    const delay = slot.backoff.next(ran);
    this.metrics?.own.workerRestarted();
    this.logger.warn(
      { event: 'worker-exit', worker: slot.index, pid, status, delay: delay / 1000 },
      `worker ${slot.index} (pid ${pid}) exited with status ${status} after ${lasted}; replacing it in ${delay / 1000} s`,
    );
    slot.respawnTimer = setTimeout(() => {
      this.startWorker(slot).catch((err: Error) =>
        this.logger.error(
          { event: 'worker-failed', worker: slot.index, err: err.message },
          `worker ${slot.index} could not start: ${err.message}`,
        ),
      );
    }, delay);
  }
}
