import type { TargetPattern } from './admission/policy.js';
import type { TokenLocation } from './admission/request-token.js';
import type { AuthPlugin } from './auth/plugin.js';
import type { TrustedProxies } from './client-address/trusted-proxies.js';
import type { LimitsConfig } from './limits/options.js';
import type { LogOptions } from './log/logger.js';
import type { MetricsListen } from './metrics/listener.js';
import type { RunAs } from './service/privileges.js';
import type { Target, TargetTls } from './targets/target.js';
import type { TlsServerOptions } from './tls/context.js';
import type { TokenCacheOptions, TokenPlugin } from './tokens/plugin.js';

/** TLS on the listening port, sniffed per connection beside plain ones. */
export interface ListenTls extends TlsServerOptions {
  /** Refuse plain connections (`--ssl-only`); a missing certificate then stops the start. */
  sslOnly: boolean;
  /**
   * The certificate was named on the command line (`--cert` or `--key`): a missing file is an error.
   * Otherwise a missing default `self.pem` only turns TLS off, as in Python websockify.
   */
  explicit: boolean;
}

/** The mini web server on the proxy's port (`--web DIR`). */
export interface WebConfig {
  /** The directory served. */
  root: string;
  /** No directory listings (`--file-only`). */
  fileOnly: boolean;
}

/** Where the proxy accepts connections. */
export type ListenSpec =
  /** `host` '' means every interface, IPv6 and IPv4. Port 0 lets the kernel choose (the log names it). */
  | { kind: 'tcp'; host: string; port: number }
  /** `--unix-listen FILE`, created with `mode` (default 0o600). */
  | { kind: 'unix'; path: string; mode: number }
  /** `--inetd`: the listening socket is file descriptor 0. */
  | { kind: 'inetd' }
  /** A listening socket (TCP or Unix) inherited open: systemd's socket activation passes fd 3. */
  | { kind: 'fd'; fd: number };

/** Everything the proxy needs, validated; built by the CLI or by a program embedding the proxy. */
export interface ProxyConfig {
  listen: ListenSpec;
  /** `--metrics-listen`: where metrics, `/healthz` and `/readyz` are served; unset = off. */
  metricsListen?: MetricsListen | undefined;
  /** The fixed target; absent when a token plugin ({@link tokens}) or a wrapped program ({@link wrap}) chooses it. */
  target?: Target | undefined;
  /** Targets by token (`--token-plugin`); see {@link TokensConfig}. */
  tokens?: TokensConfig | undefined;
  /** Resolve host names to IPv6 addresses first (`-6`). Default false. */
  preferIpv6: boolean;
  /** Serve one WebSocket session, then exit (`--run-once`). Default false. */
  runOnce: boolean;
  /** Stop accepting after this many seconds and exit once no session is open; 0 = never (`--timeout`). */
  timeout: number;
  /** Exit after this many seconds without any open session; 0 = never (`--idle-timeout`). */
  idleTimeout: number;
  /** Ping each client every N seconds and drop it when the pong has not come back by the next ping; 0 = off. */
  heartbeat: number;
  /** Seconds a connection may take from accept to a complete handshake (slow clients). Default 5. */
  handshakeTimeout: number;
  /** Seconds to wait for the target to accept a connection. Default 10. */
  connectTimeout: number;
  /** Seconds a graceful shutdown waits for sessions to close before cutting them. Default 10. */
  shutdownTimeout: number;
  /**
   * Seconds a drain (SIGTERM) lets open sessions go on, with no new connections accepted, before the
   * graceful shutdown; the proxy stops as soon as the last one ends. 0 = shut down at once (default).
   */
  drainTimeout: number;
  /** Processes serving the port: 1 (default) serves in this process; more forks that many workers. */
  workers: number;
  /** Largest WebSocket message accepted from a client, in bytes (close 1009 beyond). Default 16 MiB. */
  maxMessageSize: number;
  /**
   * Bytes of unfinished client messages held at once over all sessions (each of N workers holds 1/N);
   * past it the session holding the most is closed with 1009. Default 256 MiB.
   */
  maxUnfinished: number;
  /** Largest HTTP request head, in bytes (431 beyond). Default 16 KiB. */
  maxHeaderSize: number;
  /** Print a character per message moved, as Python websockify's `--traffic`. Default false. */
  traffic: boolean;
  /** `--record FILE`: each session is recorded to `FILE.<session number>` (an absolute path). */
  record?: string | undefined;
  /** `--record-max-bytes N`: the most bytes of message lines one session's recording holds. Default: no cap. */
  recordMaxBytes?: number | undefined;
  /** TLS on the listening port; off when its certificate is absent (see {@link ListenTls.explicit}). */
  tls?: ListenTls | undefined;
  /** Static files on the same port (`--web`); without it plain HTTP requests get 405. */
  web?: WebConfig | undefined;
  /** A program to run behind the proxy, the target of every connection (`-- PROGRAM`). */
  wrap?: WrapConfig | undefined;
  /** Access control on each handshake (`--auth-plugin`); see {@link AuthConfig}. */
  auth?: AuthConfig | undefined;
  /** `--allow-target`: the only targets connections may reach; unset = any. */
  allowTarget?: readonly TargetPattern[] | undefined;
  /** `--trusted-proxy`: peers whose forwarding headers (and PROXY headers) name the real client; unset = none. */
  trustedProxies?: TrustedProxies | undefined;
  /** `--proxy-protocol`: connections from trusted proxies begin with a PROXY protocol header. Default false. */
  proxyProtocol: boolean;
  /** `--target-proxy-protocol`: each target connection begins with a PROXY v2 header naming the client. Default false. */
  targetProxyProtocol: boolean;
  /**
   * `--user`, `--group`: give up root for this user once the port is bound and the key read; the
   * wrapped program runs as it too. Unset: the process keeps its user.
   */
  runAs?: RunAs | undefined;
  /** Connection, handshake and session limits, bans, `--allow-origin`, the refusal log's interval (src/limits/). */
  limits: LimitsConfig;
}

/** `--auth-plugin NAME --auth-source ARG [--web-auth]`. */
export interface AuthConfig {
  /** A built-in plugin's name, the absolute path of the user's module, or a plugin object. */
  plugin: string | AuthPlugin;
  /** The plugin's argument (`--auth-source`), if given. */
  source?: string | undefined;
  /** Check web requests (`--web`) too (`--web-auth`). */
  web: boolean;
}

/**
 * `--token-plugin NAME --token-source ARG [--host-token | --token-header NAME --token-cookie NAME]
 * [--token-cache SECONDS]` (or the deprecated `--target-config FILE`). Where the token is read is its
 * {@link TokenLocation} part.
 */
export interface TokensConfig extends TokenLocation {
  /** A built-in plugin's name, the path of the user's module, or a plugin object. */
  plugin: string | TokenPlugin;
  /** The plugin's argument (`--token-source`), if given. */
  source?: string | undefined;
  /** `--token-cache`: answers kept by the remote plugins; undefined = off. */
  cache?: TokenCacheOptions | undefined;
  /** `--ssl-target`: TLS to every TCP target the plugin names. */
  targetTls?: TargetTls | undefined;
}

/** How logs name a token plugin: its name or path, or 'plugin object' for one a program passed. */
export function tokenPluginName(tokens: TokensConfig): string {
  return typeof tokens.plugin === 'string' ? tokens.plugin : 'plugin object';
}

/** The defaults of every optional setting; the option reference in README.md repeats them. */
export const DEFAULTS = {
  preferIpv6: false,
  runOnce: false,
  timeout: 0,
  idleTimeout: 0,
  heartbeat: 0,
  handshakeTimeout: 5,
  connectTimeout: 10,
  shutdownTimeout: 10,
  drainTimeout: 0,
  workers: 1,
  maxMessageSize: 16 * 1024 * 1024,
  maxUnfinished: 256 * 1024 * 1024,
  maxHeaderSize: 16 * 1024,
  traffic: false,
  unixListenMode: 0o600,
  proxyProtocol: false,
  targetProxyProtocol: false,
} as const;

/** Running in the background (`-D`). */
export interface DaemonConfig {
  /** Detach from the terminal once listening. */
  detach: boolean;
  /** Write the process id here, removed on a clean exit (`--pid-file`). */
  pidFile?: string | undefined;
}

/** What the proxy does when a wrapped program exits by itself (`--wrap-mode`). */
export type WrapMode = 'exit' | 'ignore' | 'respawn';

/** A program run behind the proxy, its port moved to loopback (`websockify PORT -- PROGRAM ARGS`). */
export interface WrapConfig {
  command: string;
  args: string[];
  /** `exit` (default): exit with its status; `ignore`: keep serving; `respawn`: start it again. */
  mode: WrapMode;
}

/** The whole run-time configuration of the command: the proxy, its logging, and how the process runs. */
export interface Config {
  proxy: ProxyConfig;
  log: LogOptions;
  daemon: DaemonConfig;
}
