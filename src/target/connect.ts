import dns from 'node:dns';
import net from 'node:net';
import type { Target } from './target.js';

/** Options for {@link connectTarget}. */
export interface ConnectOptions {
  /** Try IPv6 addresses of a host name before IPv4 ones (`-6`). Default false. */
  preferIpv6?: boolean;
  /** Give up after this many milliseconds. Default 10000. */
  timeoutMs?: number;
}

/** Resolves a name with IPv6 answers first, for `--prefer-ipv6`. */
const lookupIpv6First: net.LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return (callback as (e: Error) => void)(err);
    const sorted = [...addresses].sort((a, b) => b.family - a.family);
    if (options.all) return (callback as (e: null, a: dns.LookupAddress[]) => void)(null, sorted);
    callback(null, sorted[0]!.address, sorted[0]!.family);
  });
};

/**
 * Opens the target leg: TCP_NODELAY (interactive protocols suffer from Nagle), SO_KEEPALIVE (notice a
 * target that vanished), and half-open allowed so that the bridge decides when each direction ends.
 * Resolves once connected; rejects with the socket error or a timeout error (`code` 'ETIMEDOUT').
 */
export function connectTarget(target: Target, options: ConnectOptions = {}): Promise<net.Socket> {
  const common = { allowHalfOpen: true, noDelay: true, keepAlive: true } as const;
  const socket =
    target.kind === 'tcp'
      ? net.connect({
          ...common,
          host: target.host,
          port: target.port,
          ...(options.preferIpv6 ? { lookup: lookupIpv6First } : {}),
        })
      : net.connect({ ...common, path: target.path });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`connect timed out after ${options.timeoutMs ?? 10000} ms`), {
        code: 'ETIMEDOUT',
      });
      socket.destroy();
      reject(err);
    }, options.timeoutMs ?? 10000);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}
