import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import type { ListenSpec } from '../config.js';
import { StartupError, systemErrorText } from '../errors.js';
import { formatHostPort, ipv6First } from '../targets/address.js';

/** What opening the listener tells the caller, who holds the server already. */
export interface Listener {
  /** Where it listens, for the start-up log: the address and the port the kernel chose, or the path. */
  description: string;
}

/** One line for a failure to open the listener: where, and why in words rather than an errno. */
function startupError(where: string, err: unknown): StartupError {
  // listen() on a socket (--inetd's fd 0) that is not listening says EINVAL.
  const why = (err as NodeJS.ErrnoException).code === 'EINVAL' ? 'not a listening socket' : systemErrorText(err, { creating: true });
  return new StartupError(`cannot listen on ${where}: ${why}`);
}

/** Resolves a listen host name, IPv6 first, for `--prefer-ipv6`. Literal addresses pass unchanged. */
async function resolvePreferringIpv6(host: string, where: string): Promise<string> {
  if (host === '' || net.isIP(host)) return host;
  try {
    return ipv6First(await dns.lookup(host, { all: true }))[0]!.address;
  } catch (err) {
    throw startupError(where, err);
  }
}

/** A Unix socket file left by a process that is gone may be replaced; one that answers may not. */
async function removeStaleUnixSocket(path: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new StartupError(`cannot listen on ${path}: the file exists and is not a socket`);
  // Only a refused connection proves that nobody listens; any other failure (EACCES...) leaves the file alone.
  const refusal = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(undefined);
    });
    probe.once('error', (err) => resolve(err));
  });
  if (refusal === undefined) throw new StartupError(`cannot listen on ${path}: another process is listening there`);
  if (refusal.code !== 'ECONNREFUSED') throw startupError(path, refusal);
  try {
    fs.unlinkSync(path);
  } catch (err) {
    throw startupError(path, err);
  }
}

/** How a worker's listener shares the port with the other workers'. */
export interface ListenerSharing {
  /** Bind its own socket with SO_REUSEPORT beside the others' (TCP only). */
  reusePort?: boolean | undefined;
  /** Another worker listens already: its Unix socket is not a stale one to remove. */
  joining?: boolean | undefined;
}

/**
 * Opens the listening socket described by `spec`, alone or shared with other workers (`share`).
 * @throws StartupError with one clear line (address in use, permission denied, ...).
 */
export async function openListener(
  spec: ListenSpec,
  preferIpv6: boolean,
  server: net.Server,
  share: ListenerSharing = {},
): Promise<Listener> {
  let where: string;
  let listenArgs: net.ListenOptions | { fd: number };
  let restoreUmask: number | undefined;
  if (spec.kind === 'tcp') {
    const host = preferIpv6 ? await resolvePreferringIpv6(spec.host, formatHostPort(spec.host, spec.port)) : spec.host;
    where = formatHostPort(host || '*', spec.port);
    listenArgs = host === '' ? { port: spec.port } : { host, port: spec.port };
    // Each worker's own socket on the shared port (exclusive: not through node:cluster's primary); the
    // kernel spreads connections over them. Node 22.12+ knows the option; @types/node 20 does not.
    if (share.reusePort) Object.assign(listenArgs, { reusePort: true, exclusive: true });
  } else if (spec.kind === 'unix') {
    where = spec.path;
    if (!share.joining) await removeStaleUnixSocket(spec.path);
    listenArgs = { path: spec.path };
    // Create the socket file with the final mode at once, so there is no moment when it is wider.
    restoreUmask = process.umask(0o777 & ~spec.mode);
  } else if (spec.kind === 'fd') {
    where = `inherited socket (fd ${spec.fd})`;
    listenArgs = { fd: spec.fd };
  } else {
    where = 'inetd socket (fd 0)';
    listenArgs = { fd: 0 };
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenArgs, () => {
        server.removeListener('error', reject);
        resolve();
      });
      if (restoreUmask !== undefined) process.umask(restoreUmask);
    });
  } catch (err) {
    throw startupError(where, err);
  }
  if (spec.kind === 'unix') {
    try {
      // Not every system applies the umask to socket files; chmod makes the mode exact either way.
      fs.chmodSync(spec.path, spec.mode);
    } catch (err) {
      server.close();
      throw startupError(where, err);
    }
  }
  const address = server.address();
  const description =
    address && typeof address === 'object'
      ? formatHostPort(spec.kind === 'tcp' && spec.host === '' ? '*' : address.address, address.port)
      : // Node knows no path for an inherited Unix socket.
        spec.kind === 'fd'
        ? `inherited Unix socket (fd ${spec.fd})`
        : where;
  return { description };
}
