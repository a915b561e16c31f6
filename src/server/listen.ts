import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import type { ListenSpec } from '../config.js';
import { StartupError } from '../errors.js';
import { formatHostPort } from '../target/address.js';

/** A listening server and a description of where it listens, for the start-up log. */
export interface Listener {
  server: net.Server;
  description: string;
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTSOCK: 'not a socket',
  EINVAL: 'invalid listening socket',
};

/** Resolves a listen host name, IPv6 first, for `--prefer-ipv6`. Literal addresses pass unchanged. */
async function resolvePreferringIpv6(host: string): Promise<string> {
  if (host === '' || net.isIP(host)) return host;
  try {
    const addresses = await dns.lookup(host, { all: true });
    addresses.sort((a, b) => b.family - a.family);
    return addresses[0]!.address;
  } catch (err) {
    throw new StartupError(`cannot resolve listen address ${host}: ${(err as NodeJS.ErrnoException).code}`);
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
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new StartupError(`cannot listen on ${path}: another process is listening there`);
  fs.unlinkSync(path);
}

/**
 * Opens the listening socket described by `spec`.
 * @throws StartupError with one clear line (address in use, permission denied, ...).
 */
export async function openListener(spec: ListenSpec, preferIpv6: boolean, server: net.Server): Promise<Listener> {
  let where: string;
  let listenArgs: net.ListenOptions | { fd: number };
  let restoreUmask: number | undefined;
  if (spec.kind === 'tcp') {
    const host = preferIpv6 ? await resolvePreferringIpv6(spec.host) : spec.host;
    where = formatHostPort(host || '*', spec.port);
    listenArgs = host === '' ? { port: spec.port } : { host, port: spec.port };
  } else if (spec.kind === 'unix') {
    where = spec.path;
    await removeStaleUnixSocket(spec.path);
    listenArgs = { path: spec.path };
    // Create the socket file with the final mode at once, so there is no moment when it is wider.
    restoreUmask = process.umask(0o777 & ~spec.mode);
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
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new StartupError(`cannot listen on ${where}: ${REASONS[code] ?? (err as Error).message}`);
  }
  if (spec.kind === 'unix') fs.chmodSync(spec.path, spec.mode);
  const address = server.address();
  const description =
    address && typeof address === 'object' ? formatHostPort(spec.kind === 'tcp' && spec.host === '' ? '*' : address.address, address.port) : where;
  return { server, description };
}
