import dns from 'node:dns';
import net from 'node:net';
import path from 'node:path';
import { HttpError, UsageError } from '../errors.js';
import { addIpRange, ipv6First, MAX_PORT, portFromText, splitHostPort } from '../targets/address.js';
import type { Target } from '../targets/target.js';
import { describeTarget } from '../targets/target.js';
import type { Admission } from './admission.js';

/** The host part of a TCP pattern. */
type HostPattern =
  /** `*`: any host. */
  | { kind: 'any' }
  /** A host name, lower case, without a trailing dot. */
  | { kind: 'name'; name: string }
  /** `*.example.com`: names ending in `suffix` (`.example.com`), not the bare domain. */
  | { kind: 'suffix'; suffix: string }
  /** An IP address or a CIDR range. */
  | { kind: 'addresses'; list: net.BlockList };

/** One `--allow-target` pattern, parsed by {@link parseTargetPattern}. */
export type TargetPattern = { kind: 'tcp'; host: HostPattern; ports: readonly [number, number] } | { kind: 'unix'; path: RegExp };

/** A label of a host name (letters, digits, '-', and '_' as some internal names use). */
const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Without the pattern's text: commander's message around it names the argument. */
function invalid(why: string): UsageError {
  return new UsageError(why);
}

function parsePorts(spec: string): readonly [number, number] {
  if (spec === '*') return [1, MAX_PORT];
  const [lowText = '', highText = lowText, extra] = spec.split('-');
  const low = portFromText(lowText);
  const high = portFromText(highText);
  if (low === undefined || high === undefined || extra !== undefined || low > high)
    throw invalid(`invalid port or port range '${spec}' (expected N, N-M or * within 1-65535)`);
  return [low, high];
}

/** An address or `address/prefix` as a one-entry block list; undefined when `spec` is neither. */
function parseAddresses(spec: string): net.BlockList | undefined {
  const list = new net.BlockList();
  return addIpRange(list, spec) ? list : undefined;
}

function parseHost(spec: string): HostPattern {
  if (spec === '*') return { kind: 'any' };
  if (spec.includes('%')) throw invalid('IPv6 zone indexes (%) are not supported');
  const addresses = parseAddresses(spec);
  if (addresses) return { kind: 'addresses', list: addresses };
  if (spec.includes('/') || spec.includes(':')) throw invalid(`'${spec}' is not an IP address or CIDR range`);
  const wildcard = spec.startsWith('*.');
  const name = (wildcard ? spec.slice(2) : spec).toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  // An all-digit last label is a mistyped address (10.0.0, 300.1.1.1), which must not quietly become a name.
  if (name.length > 253 || !labels.every((label) => LABEL.test(label)) || /^\d+$/.test(labels.at(-1)!)) {
    throw invalid(`'${spec}' is not a host name, *.domain, IP address or CIDR range`);
  }
  return wildcard ? { kind: 'suffix', suffix: `.${name}` } : { kind: 'name', name };
}

/**
 * Parses one `--allow-target` pattern. The grammar:
 * - `unix:PATH`: a Unix socket target; `*` in PATH matches any characters but `/` (`unix:/run/vnc/*`).
 * - `HOST` or `HOST:PORTS`, where PORTS is `N`, `N-M` or `*` (any port, also when omitted) and HOST is
 *   `*` (any host), a host name (exact, case-insensitive), `*.example.com` (any name below it), an IPv4
 *   address or CIDR range (`10.0.0.0/8`), or an IPv6 one in brackets (`[fd00::/8]:5900`); a bare IPv6
 *   address or range (`fd00::/8`) takes no port.
 * @throws UsageError saying what is wrong with the pattern.
 */
export function parseTargetPattern(text: string): TargetPattern {
  if (text.startsWith('unix:')) {
    const file = text.slice('unix:'.length);
    if (file === '') throw invalid('missing the socket path after unix:');
    const source = path
      .resolve(file)
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*');
    return { kind: 'unix', path: new RegExp(`^${source}$`) };
  }
  const split = splitHostPort(text);
  if (!split) throw invalid('malformed brackets');
  let { host: hostSpec, port: portSpec = '*' } = split;
  if (split.bracketed) {
    if (!net.isIPv6(hostSpec.split('/')[0]!)) throw invalid(`'[${hostSpec}]' is not an IPv6 address or range`);
  } else if (hostSpec.includes(':')) {
    // More than one colon: unlike a target, a pattern takes that as a bare IPv6 address or range, without a port.
    if (!net.isIPv6(text.split('/')[0]!)) throw invalid('an IPv6 address followed by a port needs brackets, as in [fd00::1]:5900');
    hostSpec = text;
    portSpec = '*';
  }
  if (hostSpec === '') throw invalid('missing the host (use * for any host)');
  return { kind: 'tcp', host: parseHost(hostSpec), ports: parsePorts(portSpec) };
}

/** Options for {@link TargetPolicy}. */
export interface TargetPolicyOptions {
  /** Pin a host name to its first IPv6 address rather than its first address (`-6`). */
  preferIpv6?: boolean;
}

/** An address without its IPv6 zone index, and its family for BlockList. */
function addressOf(host: string): { address: string; type: 'ipv4' | 'ipv6' } | undefined {
  const address = host.replace(/%.*$/, '');
  const family = net.isIP(address);
  return family === 0 ? undefined : { address, type: family === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * `--allow-target`: which targets a connection may reach, whoever chose them (the command line, a
 * token store, a plugin). A target passes when some pattern allows it. A host name passes a name
 * pattern by its spelling; against address patterns it is resolved, every address it resolves to must
 * be allowed, and the connection is then pinned to a checked address, so that a second lookup cannot
 * answer differently (DNS rebinding).
 */
export class TargetPolicy {
  constructor(
    private readonly patterns: readonly TargetPattern[],
    private readonly options: TargetPolicyOptions = {},
  ) {}

  /** The target to connect to when `target` is allowed (a name allowed by address is pinned), else undefined. */
  async check(target: Target): Promise<Target | undefined> {
    if (target.kind === 'unix') {
      const file = path.resolve(target.path);
      return this.patterns.some((p) => p.kind === 'unix' && p.path.test(file)) ? target : undefined;
    }
    const tcp = this.patterns.filter(
      (p): p is Extract<TargetPattern, { kind: 'tcp' }> => p.kind === 'tcp' && p.ports[0] <= target.port && target.port <= p.ports[1],
    );
    const literal = addressOf(target.host);
    if (literal) return tcp.some((p) => this.allowsAddress(p.host, literal)) ? target : undefined;
    const name = target.host.toLowerCase().replace(/\.$/, '');
    const byName = tcp.some(
      ({ host }) =>
        host.kind === 'any' || (host.kind === 'name' && host.name === name) || (host.kind === 'suffix' && name.endsWith(host.suffix)),
    );
    if (byName) return target;
    const ranges = tcp.filter((p) => p.host.kind === 'addresses');
    if (ranges.length === 0) return undefined;
    let resolved: dns.LookupAddress[];
    try {
      resolved = await dns.promises.lookup(target.host, { all: true });
    } catch {
      return undefined; // a name that cannot be checked is not allowed
    }
    const allowed = resolved.every(({ address }) => ranges.some((p) => this.allowsAddress(p.host, addressOf(address)!)));
    if (!allowed || resolved.length === 0) return undefined;
    const pinned = (this.options.preferIpv6 ? ipv6First(resolved) : resolved)[0]!;
    // The certificate is still checked against the name the target was given by.
    const tls = target.tls && { ...target.tls, servername: target.tls.servername ?? target.host };
    return { ...target, host: pinned.address, ...(tls ? { tls } : {}) };
  }

  private allowsAddress(host: HostPattern, { address, type }: { address: string; type: 'ipv4' | 'ipv6' }): boolean {
    return host.kind === 'any' || (host.kind === 'addresses' && host.list.check(address, type));
  }
}

/**
 * Puts `policy` after an admission: a target it does not allow is refused with 403 naming the target
 * (the upgrade stage answers and logs it); an allowed one continues, pinned as {@link TargetPolicy.check}
 * says. Without a policy the admission is returned as it is.
 */
export function guardAdmission(admit: Admission, policy: TargetPolicy | undefined): Admission {
  if (!policy) return admit;
  return async (req) => {
    const target = await admit(req);
    const allowed = await policy.check(target);
    if (!allowed) throw new HttpError(403, `target ${describeTarget(target)} is not allowed by --allow-target`, {}, 'target_not_allowed');
    return allowed;
  };
}
