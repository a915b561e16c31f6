import { ProxyCluster } from '../cluster/primary.js';
import { createLogger, type Logger } from '../log/logger.js';
import { type ProxyOptions, type ResolvedOptions, resolveOptions } from '../options.js';
import { InProcessProxy, type ProxyServer } from './proxy.js';

/**
 * The proxy for options already resolved (the CLI's way in, which makes its own logger): with
 * `workers` above 1 a {@link ProxyCluster}, else a {@link InProcessProxy}.
 */
export function proxyFor(options: ProxyOptions, resolved: ResolvedOptions, logger: Logger): ProxyServer {
  return resolved.proxy.workers > 1
    ? new ProxyCluster(options, resolved.proxy, resolved.log, logger)
    : new InProcessProxy(resolved.proxy, logger);
}

/**
 * Creates the whole proxy from options named as the command line's flags (see {@link ProxyOptions});
 * call `listen()` to start it, `drain()` or `close()` to stop it gracefully. Logs as the command does
 * unless `options.logger` is given. With `workers` above 1 the port is served by that many worker
 * processes, which this process starts, replaces and stops.
 * @throws UsageError when the options are malformed or contradict each other.
 */
export function createProxy(options: ProxyOptions): ProxyServer {
  const resolved = resolveOptions(options);
  return proxyFor(options, resolved, options.logger ?? createLogger(resolved.log));
}
