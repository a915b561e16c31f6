import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseTargetPattern, type TargetPattern } from './admission/policy.js';
import { builtinAuthPluginName } from './auth/load.js';
import type { AuthPlugin } from './auth/plugin.js';
import { TrustedProxies } from './client-address/trusted-proxies.js';
import { DEFAULTS, type ListenSpec, type ProxyConfig, type WrapMode } from './config.js';
import { UsageError } from './errors.js';
import { type LimitOptions, resolveLimits } from './limits/options.js';
import type { Logger, LogOptions } from './log/logger.js';
import { parseSyslogServer } from './log/syslog.js';
import type { MetricsListen } from './metrics/listener.js';
import { isModulePath } from './plugin-module.js';
import { passedSocket } from './service/socket-activation.js';
import { parseHostPort } from './targets/address.js';
import type { Target, TargetTls } from './targets/target.js';
import { TLS_DEFAULTS, type TlsMinVersion } from './tls/context.js';
import { builtInTokenPlugin, TOKEN_PLUGIN_NAMES } from './tokens/load.js';
import type { TokenPlugin } from './tokens/plugin.js';
import { tokenCacheOf, tokenLocationOf } from './tokens/token-options.js';

/**
 * The proxy's options: the command line's flags in camelCase, with the same meanings and defaults
 * (docs/API.md lists each). Paths are taken relative to the current directory.
 */
export interface ProxyOptions extends LimitOptions {
  /** `[host:]port` to listen on (`'6080'`, `'127.0.0.1:6080'`, `'[::1]:0'`), or a port number. Port 0: the kernel chooses. */
  listen?: string | number | undefined;
  /** Listen on this Unix socket instead of a TCP port. */
  unixListen?: string | undefined;
  /** File mode of the `unixListen` socket. Default 0o600. */
  unixListenMode?: number | undefined;
  /** The listening socket is file descriptor 0 (inetd, systemd). Default false. */
  inetd?: boolean | undefined;
  /**
   * Serve this listening socket (TCP or Unix), inherited open. Default: with no other listen option, the
   * socket systemd passed (socket activation: `LISTEN_FDS`, `LISTEN_PID`), if any.
   */
  listenFd?: number | undefined;
  /** Once the port is bound and the TLS key read, run as this user (name or number); needs root. Default: stay. */
  user?: string | undefined;
  /** With `user`, run as this group (name or number). Default the user's login group. */
  group?: string | undefined;
  /** The fixed target, `host:port` or `[ipv6]:port`. */
  target?: string | undefined;
  /** Connect each WebSocket to this Unix socket. */
  unixTarget?: string | undefined;
  /** A program to run and proxy to, its listening port moved to loopback: `[command, ...args]` (`-- PROGRAM`). */
  program?: readonly string[] | undefined;
  /** When the program exits: `exit` (default) stops the proxy, `ignore`, or `respawn`. */
  wrapMode?: WrapMode | undefined;
  /** Choose each connection's target by its token: a built-in plugin's name, a module path, or a plugin object. */
  tokenPlugin?: string | TokenPlugin | undefined;
  /** The token plugin's argument (a file, directory, URL, key file, Redis address). */
  tokenSource?: string | undefined;
  /** Take the token from the Host header instead of `?token=`. Default false. */
  hostToken?: boolean | undefined;
  /** Also take the token from this request header, when the URL has no `?token=` (README.md, Tokens, says why this order). */
  tokenHeader?: string | undefined;
  /** Also take the token from this cookie, after `?token=` and `tokenHeader` (percent-escapes decoded). */
  tokenCookie?: string | undefined;
  /** Seconds the remote token plugins (TokenRedis, the token APIs, JWTTokenApi) keep each answer. Default 0 (off). */
  tokenCache?: number | undefined;
  /** Most answers `tokenCache` keeps, least recently used dropped first. Default 10000. */
  tokenCacheEntries?: number | undefined;
  /** Deprecated: the same as `tokenPlugin: 'TokenFile', tokenSource: FILE`. */
  targetConfig?: string | undefined;
  /** Check each handshake: a built-in plugin's name, a module path, or a plugin object. */
  authPlugin?: string | AuthPlugin | undefined;
  /** The auth plugin's argument. */
  authSource?: string | undefined;
  /** Check `web` requests with the auth plugin too. Default false. */
  webAuth?: boolean | undefined;
  /** The only targets connections may reach (host, `*.domain`, IP, CIDR, each with `:port` or `:low-high`; `unix:PATH`). Default any. */
  allowTarget?: readonly string[] | undefined;
  /**
   * Peers whose word about the real client is taken (`X-Forwarded-For`, `Forwarded`, PROXY headers): IP
   * addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`). Default none.
   */
  trustedProxy?: readonly string[] | undefined;
  /** Connections from `trustedProxy` peers begin with a PROXY protocol header (v1 or v2), as HAProxy's `send-proxy` writes. Default false. */
  proxyProtocol?: boolean | undefined;
  /** Write a PROXY protocol v2 header with the real client's address first to each target. Default false. */
  targetProxyProtocol?: boolean | undefined;
  /** Serve static files from this directory on the same port. */
  web?: string | undefined;
  /** With `web`, no directory listings. Default false. */
  fileOnly?: boolean | undefined;
  /** Record each session to `FILE.<session number>`. */
  record?: string | undefined;
  /**
   * With `record`: the most bytes of message lines one session's recording may hold; past it the recording
   * stops with a note in the file (still complete), and the session goes on. Default: no cap.
   */
  recordMaxBytes?: number | undefined;
  /** TLS certificate file (may hold the key). Default `self.pem`; TLS is off when the default is absent. */
  cert?: string | undefined;
  /** TLS private key file, if separate. */
  key?: string | undefined;
  /** Password of an encrypted private key. */
  keyPassword?: string | undefined;
  /** A file holding the password of an encrypted private key (one trailing newline ignored), read at start. */
  keyPasswordFile?: string | undefined;
  /** Refuse plain connections. Default false. */
  sslOnly?: boolean | undefined;
  /** Cipher list for TLS 1.2 and below, in the server's order of preference. Default Node's. */
  sslCiphers?: string | undefined;
  /** Lowest TLS version. Default `default` (TLS 1.2). */
  sslVersion?: TlsMinVersion | undefined;
  /** TLS clients must present a certificate signed by `cafile`. Default false. */
  verifyClient?: boolean | undefined;
  /** Authorities trusted for client certificates (needs `verifyClient`). */
  cafile?: string | undefined;
  /** Connect to the target over TLS, verifying it. Default false. */
  sslTarget?: boolean | undefined;
  /** With `sslTarget`, trust only these authorities. */
  sslTargetCa?: string | undefined;
  /** With `sslTarget`, accept any certificate. Default false. */
  sslTargetInsecure?: boolean | undefined;
  /** Serve one session, then stop. Default false. */
  runOnce?: boolean | undefined;
  /** Seconds after which to stop accepting; the proxy stops once no session is open. Default 0 (never). */
  timeout?: number | undefined;
  /** Seconds without any session before the proxy stops. Default 0 (never). */
  idleTimeout?: number | undefined;
  /** Ping each client every N seconds; drop it when the pong is late. Default 0 (off). */
  heartbeat?: number | undefined;
  /** Resolve host names to IPv6 first. Default false. */
  preferIpv6?: boolean | undefined;
  /** Seconds a connection has to complete its handshake. Default 5. */
  handshakeTimeout?: number | undefined;
  /** Seconds to connect the target. Default 10. */
  connectTimeout?: number | undefined;
  /** Seconds a graceful stop gives sessions before they are cut. Default 10. */
  shutdownTimeout?: number | undefined;
  /** Seconds a drain (SIGTERM) lets open sessions go on before the graceful stop. Default 0 (stop at once). */
  drainTimeout?: number | undefined;
  /**
   * `[host:]port` of a second listener serving Prometheus metrics (`/metrics`, over all workers),
   * `/healthz` and `/readyz`; host default `127.0.0.1`; never the proxy's own port. Default off.
   */
  metricsListen?: string | number | undefined;
  /** Worker processes serving the port, or `'auto'` for one per core. Default 1 (this process serves). */
  workers?: number | 'auto' | undefined;
  /** Largest message from a client, in bytes. Default 16 MiB. */
  maxMessageSize?: number | undefined;
  /**
   * Bytes of unfinished client messages held at once over all sessions (and all workers); past it the
   * session holding the most is closed with 1009. At least `maxMessageSize`. Default 256 MiB.
   */
  maxUnfinished?: number | undefined;
  /** Largest HTTP request head, in bytes. Default 16 KiB. */
  maxHeaderSize?: number | undefined;
  /** Print a character per message moved on stdout. Default false. */
  traffic?: boolean | undefined;
  /** Log debug events. Default false. */
  verbose?: boolean | undefined;
  /** Also append log lines to this file. */
  logFile?: string | undefined;
  /** Also log to syslog: a socket path such as `/dev/log`, or UDP `host:port`. */
  syslog?: string | undefined;
  /** RFC 3164 syslog messages instead of RFC 5424. Default false. */
  legacySyslog?: boolean | undefined;
  /** `text` (default) or `json` log lines. */
  logFormat?: 'text' | 'json' | undefined;
  /** A pino logger to log to instead of one made from the log options above. */
  logger?: Logger | undefined;
}

/** The options, checked and resolved: the proxy's configuration and where it logs. */
export interface ResolvedOptions {
  proxy: ProxyConfig;
  log: LogOptions;
}

/** A non-negative number of seconds. */
function seconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new UsageError(`${name}: expected a number of seconds (0 or more), got ${value}`);
  return value;
}

/** A positive whole number of bytes. */
function bytes(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new UsageError(`${name}: expected a positive number of bytes, got ${value}`);
  return value;
}

/** `--max-unfinished`: a bound below the largest message would refuse every large message. */
function unfinishedBytesOf(options: ProxyOptions): number {
  const bound = bytes('--max-unfinished', options.maxUnfinished, DEFAULTS.maxUnfinished);
  const largest = options.maxMessageSize ?? DEFAULTS.maxMessageSize;
  if (bound < largest) throw new UsageError(`--max-unfinished: ${bound} is below --max-message-size (${largest})`);
  return bound;
}

/** An absolute path, as Python websockify makes them: a daemon changes its directory later. */
function absolute(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

/**
 * Checks the options and turns them into the proxy's configuration, with every default filled in.
 * @throws UsageError naming the option that is malformed, missing, or contradicts another.
 */
export function resolveOptions(options: ProxyOptions): ResolvedOptions {
  checkCombinations(options);
  const targetTls: TargetTls | undefined = options.sslTarget
    ? { insecure: options.sslTargetInsecure ?? false, ca: absolute(options.sslTargetCa) }
    : undefined;
  const tokenPlugin = options.targetConfig !== undefined ? 'TokenFile' : options.tokenPlugin;
  const { program } = options;
  const tokenLocation = tokenLocationOf(options);
  const tokenCache = tokenCacheOf(options);
  const listen = listenOf(options);
  return {
    proxy: {
      listen,
      metricsListen: metricsListenOf(options.metricsListen, listen),
      target: targetOf(options, targetTls),
      tokens:
        tokenPlugin === undefined
          ? undefined
          : {
              plugin: typeof tokenPlugin === 'string' && isModulePath(tokenPlugin) ? resolve(tokenPlugin) : tokenPlugin,
              source: options.targetConfig !== undefined ? resolve(options.targetConfig) : options.tokenSource,
              ...tokenLocation,
              cache: tokenCache,
              targetTls,
            },
      wrap: program && { command: program[0]!, args: program.slice(1), mode: options.wrapMode ?? 'exit' },
      preferIpv6: options.preferIpv6 ?? DEFAULTS.preferIpv6,
      runOnce: options.runOnce ?? DEFAULTS.runOnce,
      timeout: seconds('--timeout', options.timeout, DEFAULTS.timeout),
      idleTimeout: seconds('--idle-timeout', options.idleTimeout, DEFAULTS.idleTimeout),
      heartbeat: seconds('--heartbeat', options.heartbeat, DEFAULTS.heartbeat),
      handshakeTimeout: seconds('--handshake-timeout', options.handshakeTimeout, DEFAULTS.handshakeTimeout),
      connectTimeout: seconds('--connect-timeout', options.connectTimeout, DEFAULTS.connectTimeout),
      shutdownTimeout: seconds('--shutdown-timeout', options.shutdownTimeout, DEFAULTS.shutdownTimeout),
      drainTimeout: seconds('--drain-timeout', options.drainTimeout, DEFAULTS.drainTimeout),
      workers: workersOf(options),
      maxMessageSize: bytes('--max-message-size', options.maxMessageSize, DEFAULTS.maxMessageSize),
      maxUnfinished: unfinishedBytesOf(options),
      maxHeaderSize: bytes('--max-header-size', options.maxHeaderSize, DEFAULTS.maxHeaderSize),
      traffic: options.traffic ?? DEFAULTS.traffic,
      record: absolute(options.record),
      recordMaxBytes: options.recordMaxBytes === undefined ? undefined : bytes('--record-max-bytes', options.recordMaxBytes, 0),
      tls: {
        cert: resolve(options.cert ?? TLS_DEFAULTS.cert),
        key: absolute(options.key),
        keyPassword: options.keyPassword,
        keyPasswordFile: absolute(options.keyPasswordFile),
        ciphers: options.sslCiphers,
        minVersion: options.sslVersion ?? TLS_DEFAULTS.minVersion,
        verifyClient: options.verifyClient ?? false,
        cafile: absolute(options.cafile),
        sslOnly: options.sslOnly ?? false,
        explicit: options.cert !== undefined || options.key !== undefined,
      },
      web: options.web === undefined ? undefined : { root: resolve(options.web), fileOnly: options.fileOnly ?? false },
      auth:
        options.authPlugin === undefined
          ? undefined
          : {
              plugin:
                typeof options.authPlugin === 'string' && isModulePath(options.authPlugin)
                  ? resolve(options.authPlugin)
                  : options.authPlugin,
              source: options.authSource,
              web: options.webAuth ?? false,
            },
      allowTarget: allowTargetOf(options.allowTarget),
      trustedProxies: trustedProxiesOf(options.trustedProxy),
      proxyProtocol: options.proxyProtocol ?? DEFAULTS.proxyProtocol,
      targetProxyProtocol: options.targetProxyProtocol ?? DEFAULTS.targetProxyProtocol,
      runAs: options.user === undefined ? undefined : { user: options.user, group: options.group },
      limits: resolveLimits(options),
    },
    log: {
      format: options.logFormat ?? 'text',
      verbose: options.verbose ?? false,
      file: absolute(options.logFile),
      syslog: options.syslog,
      legacySyslog: options.legacySyslog ?? false,
    },
  };
}

/** Most workers accepted: far more than any machine has cores, well short of exhausting process limits. */
const MAX_WORKERS = 1024;

/**
 * The number of worker processes: `auto` is one per core. More than one cannot serve a single session
 * (`--run-once`) or a socket inherited from inetd, and cannot share objects a program passed in.
 */
function workersOf(options: ProxyOptions): number {
  const { workers } = options;
  if (workers === undefined) return DEFAULTS.workers;
  const count = workers === 'auto' ? availableParallelism() : workers;
  if (!Number.isInteger(count) || count < 1 || count > MAX_WORKERS)
    throw new UsageError(`--workers: expected a number of processes from 1 to ${MAX_WORKERS}, or auto; got ${workers}`);
  if (count === 1) return count;
  if (options.runOnce) throw new UsageError('--run-once serves a single session: it cannot be used with --workers above 1');
  if (options.inetd) throw new UsageError('--inetd hands one socket to one process: it cannot be used with --workers above 1');
  // Each worker is a process of its own: only what can be named (a module path, a file) reaches it.
  const objects = [
    typeof options.tokenPlugin === 'object' && 'tokenPlugin',
    typeof options.authPlugin === 'object' && 'authPlugin',
    options.logger !== undefined && 'logger',
  ].filter((name) => name !== false);
  if (objects.length > 0) {
    throw new UsageError(
      `--workers above 1 runs the proxy in other processes, which cannot share the ${objects.join(' and ')} object(s) given: name plugins by module path, and log through the log options`,
    );
  }
  return count;
}

/** Each `--allow-target` pattern parsed; undefined (any target) when there are none. */
function allowTargetOf(patterns: readonly string[] | undefined): TargetPattern[] | undefined {
  if (!patterns || patterns.length === 0) return undefined;
  return patterns.map((text) => {
    try {
      return parseTargetPattern(text);
    } catch (err) {
      throw new UsageError(`--allow-target: ${(err as Error).message}`);
    }
  });
}

/** `--trusted-proxy`'s ranges in one list; undefined (nobody is trusted) when there are none. */
function trustedProxiesOf(ranges: readonly string[] | undefined): TrustedProxies | undefined {
  if (!ranges || ranges.length === 0) return undefined;
  try {
    return new TrustedProxies(ranges);
  } catch (err) {
    throw new UsageError(`--trusted-proxy: ${(err as Error).message}`);
  }
}

/** The option that names the token plugin, for messages. */
function tokenOptionOf(options: ProxyOptions): string {
  return options.targetConfig !== undefined ? '--target-config' : '--token-plugin';
}

/** Options that need, exclude or contradict each other, and names that must be known. */
function checkCombinations(options: ProxyOptions): void {
  const { tokenPlugin, authPlugin, program } = options;
  const tokens = options.targetConfig !== undefined || tokenPlugin !== undefined;
  if (options.legacySyslog && !options.syslog) throw new UsageError('--legacy-syslog needs --syslog');
  if (options.syslog !== undefined) {
    try {
      parseSyslogServer(options.syslog);
    } catch (err) {
      throw new UsageError(`--syslog: ${(err as Error).message}`);
    }
  }
  if (options.inetd && options.unixListen) throw new UsageError('--inetd and --unix-listen cannot be used together');
  if (options.group !== undefined && options.user === undefined)
    throw new UsageError('--group needs --user: the group is changed when root is given up');
  for (const [name, value] of [
    ['--user', options.user],
    ['--group', options.group],
  ] as const) {
    if (value !== undefined && !/^[^\s:]+$/.test(value)) throw new UsageError(`${name}: expected a name or number, got '${value}'`);
  }
  if (options.listenFd !== undefined && (!Number.isInteger(options.listenFd) || options.listenFd < 0))
    throw new UsageError(`listenFd: expected a file descriptor number, got ${options.listenFd}`);
  if (options.fileOnly && !options.web) throw new UsageError('--file-only needs --web');
  if (options.recordMaxBytes !== undefined && options.record === undefined) throw new UsageError('--record-max-bytes needs --record');
  if (options.proxyProtocol && !options.trustedProxy?.length)
    throw new UsageError('--proxy-protocol needs --trusted-proxy: the peers that send the header');
  // A Unix socket peer has no address, so no --trusted-proxy range can name it.
  if (options.proxyProtocol && options.unixListen)
    throw new UsageError('--proxy-protocol needs a TCP listener: peers on a Unix socket have no address to trust');
  if (options.targetConfig !== undefined && (tokenPlugin || options.tokenSource !== undefined)) {
    throw new UsageError('--target-config FILE is the old spelling of --token-plugin TokenFile --token-source FILE: give one or the other');
  }
  if (options.tokenSource !== undefined && !tokenPlugin) throw new UsageError('--token-source needs --token-plugin');
  if (options.hostToken && !tokens) throw new UsageError('--host-token needs --token-plugin');
  if (typeof tokenPlugin === 'string' && !isModulePath(tokenPlugin) && !builtInTokenPlugin(tokenPlugin)) {
    throw new UsageError(
      `--token-plugin: unknown plugin '${tokenPlugin}' (${TOKEN_PLUGIN_NAMES.join(', ')}, or a path such as ./my-tokens.js)`,
    );
  }
  if (tokens && program)
    throw new UsageError(`-- PROGRAM cannot be used with ${tokenOptionOf(options)}: the wrapped program is the only target`);
  if (options.authSource !== undefined && !authPlugin) throw new UsageError('--auth-source needs --auth-plugin');
  if (options.webAuth && !authPlugin) throw new UsageError('--web-auth needs --auth-plugin');
  if (options.webAuth && !options.web) throw new UsageError('--web-auth needs --web');
  if (typeof authPlugin === 'string' && !isModulePath(authPlugin) && !builtinAuthPluginName(authPlugin)) {
    throw new UsageError(
      `--auth-plugin: unknown plugin '${authPlugin}' (BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth, or a path such as ./my-auth.js)`,
    );
  }
  // Without --verify-client no certificate is ever verified, so every connection would be refused.
  if (typeof authPlugin === 'string' && builtinAuthPluginName(authPlugin) === 'ClientCertCNAuth' && !options.verifyClient) {
    throw new UsageError('--auth-plugin ClientCertCNAuth needs --verify-client');
  }
  if (options.keyPassword !== undefined && options.keyPasswordFile !== undefined)
    throw new UsageError('--key-password and --key-password-file cannot be used together: give the password one way');
  if (options.cafile && !options.verifyClient) throw new UsageError('--cafile needs --verify-client');
  if ((options.sslTargetCa || options.sslTargetInsecure) && !options.sslTarget) {
    throw new UsageError('--ssl-target-ca and --ssl-target-insecure need --ssl-target');
  }
  if (options.sslTargetCa && options.sslTargetInsecure)
    throw new UsageError('--ssl-target-ca and --ssl-target-insecure contradict each other');
  if (options.wrapMode !== undefined && !program) throw new UsageError('--wrap-mode needs a program to wrap (-- PROGRAM)');
  if (
    options.unixListenMode !== undefined &&
    (!Number.isInteger(options.unixListenMode) || options.unixListenMode < 0 || options.unixListenMode > 0o777)
  ) {
    throw new UsageError(`--unix-listen-mode: expected a file mode from 0 to 0o777, got ${options.unixListenMode}`);
  }
}

/** Where to listen: `inetd`, `unixListen`, `listenFd`, `listen`, or else the socket systemd passed. */
function listenOf(options: ProxyOptions): ListenSpec {
  if (options.inetd) return { kind: 'inetd' };
  if (options.unixListen)
    return { kind: 'unix', path: resolve(options.unixListen), mode: options.unixListenMode ?? DEFAULTS.unixListenMode };
  if (options.listenFd !== undefined) return { kind: 'fd', fd: options.listenFd };
  if (options.listen === undefined) {
    const passed = passedSocket();
    if (passed !== undefined) return { kind: 'fd', fd: passed };
    throw new UsageError('missing the listen address: [source_addr:]source_port');
  }
  return { kind: 'tcp', ...parseHostPort(String(options.listen), 'listen address', false, true) };
}

/** `--metrics-listen [HOST:]PORT`: on 127.0.0.1 unless a host is given, and never on the proxy's own port. */
function metricsListenOf(text: string | number | undefined, listen: ListenSpec): MetricsListen | undefined {
  if (text === undefined) return undefined;
  const { host, port } = parseHostPort(String(text), '--metrics-listen', false, true);
  if (port !== 0 && listen.kind === 'tcp' && listen.port === port)
    throw new UsageError(`--metrics-listen: port ${port} is the proxy's own port; give the metrics another one`);
  return { host: host || '127.0.0.1', port };
}

/** The fixed target: none with a token plugin or a wrapped program, `unixTarget`, or `target`. */
function targetOf(options: ProxyOptions, targetTls: TargetTls | undefined): Target | undefined {
  const { program } = options;
  if (program) {
    if (program.length === 0) throw new UsageError('missing the program to wrap after --');
    if (options.inetd || options.unixListen)
      throw new UsageError('-- PROGRAM needs a TCP listen port (the port the program binds), not --inetd or --unix-listen');
    if (options.unixTarget || options.sslTarget) {
      throw new UsageError(
        `${options.unixTarget ? '--unix-target' : '--ssl-target'} cannot be used with -- PROGRAM: the wrapped program is the target`,
      );
    }
    if (options.target !== undefined)
      throw new UsageError(`too many arguments: the wrapped program is the target, so '${options.target}' is extra`);
    return undefined;
  }
  if (options.targetConfig !== undefined || options.tokenPlugin !== undefined) {
    // The plugin chooses each connection's target; a fixed one as well would silently lose to it.
    const option = tokenOptionOf(options);
    if (options.unixTarget)
      throw new UsageError(`--unix-target cannot be used with ${option}: the token plugin chooses each connection's target`);
    if (options.target !== undefined) {
      throw new UsageError(
        `a token plugin (${option}) chooses each connection's target, so the fixed target '${options.target}' cannot be given too`,
      );
    }
    return undefined;
  }
  if (options.unixTarget) {
    if (options.sslTarget) throw new UsageError('--ssl-target needs a TCP target, not --unix-target');
    if (options.target !== undefined) throw new UsageError(`too many arguments: ${options.target}`);
    return { kind: 'unix', path: resolve(options.unixTarget) };
  }
  const text = options.target;
  if (text === undefined)
    throw new UsageError('missing the target: target_addr:target_port (or --unix-target FILE, or --token-plugin NAME)');
  if (!text.includes(':')) throw new UsageError(`target: expected target_addr:target_port, got '${text}'`);
  return { kind: 'tcp', ...parseHostPort(text, 'target', true), tls: targetTls };
}
