import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { StartupError } from '../errors.js';
import { ipv6First } from './address.js';
import type { Target, TargetTls } from './target.js';

/** Options for {@link connectTarget}. */
export interface ConnectOptions {
  /** Try IPv6 addresses of a host name before IPv4 ones (`-6`). Default false. */
  preferIpv6?: boolean;
  /** Give up after this many milliseconds (TCP connect and TLS handshake together). Default 10000. */
  timeoutMs?: number;
}

/** Resolves a name with IPv6 answers first, for `--prefer-ipv6`. */
const lookupIpv6First: net.LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return (callback as (e: Error) => void)(err);
    const sorted = ipv6First(addresses);
    if (options.all) return (callback as (e: null, a: dns.LookupAddress[]) => void)(null, sorted);
    callback(null, sorted[0]!.address, sorted[0]!.family);
  });
};

/** Client contexts by CA file ('' for the default trust store): each file is read and parsed once. */
const clientContexts = new Map<string, tls.SecureContext>();

/**
 * The client-side TLS context for the target: the default trust store, or only the authorities in
 * `caFile`. Built once per file; call it at start-up so that a bad file stops the proxy there.
 * @throws StartupError when the CA file cannot be read or holds no usable certificate.
 */
export function targetTlsContext(caFile?: string): tls.SecureContext {
  const cached = clientContexts.get(caFile ?? '');
  if (cached) return cached;
  let context: tls.SecureContext;
  if (caFile) {
    let pem: Buffer;
    try {
      pem = fs.readFileSync(caFile);
    } catch (err) {
      throw new StartupError(
        `cannot read --ssl-target-ca file ${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new StartupError(`--ssl-target-ca file ${caFile}: no PEM certificate in it`);
    try {
      context = tls.createSecureContext({ ca: pem });
    } catch (err) {
      throw new StartupError(`--ssl-target-ca file ${caFile}: ${(err as Error).message}`);
    }
  } else {
    context = tls.createSecureContext();
  }
  clientContexts.set(caFile ?? '', context);
  return context;
}

/** Starts TLS on a connected socket: SNI unless the host is an IP literal, verification unless insecure. */
function startTls(socket: net.Socket, host: string, options: TargetTls): tls.TLSSocket {
  const servername = options.servername ?? (net.isIP(host) ? undefined : host);
  return tls.connect({
    socket,
    // The name the certificate is checked against when no SNI name is sent (an IP literal).
    host,
    ...(servername ? { servername } : {}),
    secureContext: targetTlsContext(options.ca),
    rejectUnauthorized: !options.insecure,
  });
}

/**
 * Opens the target leg: TCP_NODELAY (interactive protocols suffer from Nagle), SO_KEEPALIVE (notice a
 * target that vanished), and half-open allowed so that the bridge decides when each direction ends.
 * With `target.tls` the leg is TLS, verified as configured. Resolves once connected (and secure);
 * rejects with the socket or TLS error (a verification failure's `code` names it, for example
 * 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' or 'ERR_TLS_CERT_ALTNAME_INVALID') or a timeout ('ETIMEDOUT').
 * @param onread where a plain (non-TLS) leg's reads land and who handles them, instead of 'data' events
 * (TLS legs ignore it: their reads are decrypted by Node). Such a leg resolves paused, so that no read
 * reaches the callback before its owner is ready; `resume()` starts it.
 * @param header bytes written first on the raw connection, before TLS with `target.tls` (a PROXY protocol
 * header, which the target reads before anything else).
 */
export function connectTarget(target: Target, options: ConnectOptions = {}, onread?: net.OnReadOpts, header?: Buffer): Promise<net.Socket> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const userReads = onread !== undefined && !(target.kind === 'tcp' && target.tls);
  const common = { allowHalfOpen: true, noDelay: true, keepAlive: true, ...(userReads ? { onread } : {}) } as const;
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
    let leg: net.Socket = socket;
    const timer = setTimeout(() => {
      const what = leg === socket ? 'connect' : 'TLS handshake';
      fail(Object.assign(new Error(`${what} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      leg.destroy();
      reject(err);
    };
    const done = (): void => {
      clearTimeout(timer);
      leg.removeListener('error', fail);
      if (userReads) leg.pause();
      resolve(leg);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      if (header) socket.write(header);
      if (target.kind !== 'tcp' || !target.tls) return done();
      let secure: tls.TLSSocket;
      try {
        secure = startTls(socket, target.host, target.tls);
      } catch (err) {
        return fail(err as Error);
      }
      // From here the TLS socket reports the raw socket's errors too.
      socket.removeListener('error', fail);
      leg = secure;
      secure.once('error', fail);
      secure.once('secureConnect', done);
    });
  });
}
