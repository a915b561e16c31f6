import type { IncomingMessage } from 'node:http';
import { createAdmission } from '../admission/admission.js';
import { guardAdmission, TargetPolicy } from '../admission/policy.js';
import { fixedTarget, type TargetSource, tokenTargets } from '../admission/target-source.js';
import { loadAuthPlugin } from '../auth/load.js';
import type { AuthPlugin } from '../auth/plugin.js';
import { trafficHook } from '../bridge/traffic.js';
import { createForwardedResolver } from '../client-address/resolve.js';
import { type ProxyConfig, tokenPluginName } from '../config.js';
import { StartupError } from '../errors.js';
import { Limits, type SharedLimits } from '../limits/limits.js';
import type { Logger } from '../log/logger.js';
import { limitRefusalLog } from '../log/refusal-log.js';
import type { ProxyMetrics } from '../metrics/registry.js';
import { targetTlsContext } from '../targets/connect.js';
import { loadTokenPlugin, lookupTimeoutFor } from '../tokens/load.js';
import { WrappedProgram } from '../wrap/program.js';
import { Endpoint, type SessionIds } from './endpoint.js';

/** An endpoint ready for upgrade requests, with what it was built from. */
export interface OpenedEndpoint {
  endpoint: Endpoint;
  /** Where its sessions go; close it after the endpoint's shutdown. */
  targets: TargetSource;
  /** The auth plugin, for `--web-auth`. */
  auth: AuthPlugin | undefined;
  /** Finds a request's real client from trusted forwarding headers; the endpoint calls it for each handshake. */
  forwarded: (req: IncomingMessage) => void;
  /** The connection limits, which the proxy also applies at accept and after a PROXY header. */
  limits: Limits;
}

/** What a proxy process adds to its configuration when it is one of several workers. */
export interface EndpointRole {
  /** How sessions are numbered (unique over the workers). */
  sessionIds?: SessionIds | undefined;
  /** Where sessions go, when another process decides it (the primary's wrapped program). */
  targets?: TargetSource | undefined;
  /** `--metrics-listen`: where sessions, refusals and token lookups are counted. */
  metrics?: ProxyMetrics | undefined;
  /** Where the limits' counts and bans are kept, when another process keeps them (the primary's). */
  limits?: SharedLimits | undefined;
}

/**
 * Builds the WebSocket end of a configuration: the auth plugin, the target source (wrapped program,
 * token plugin or fixed target), `--allow-target`, and the {@link Endpoint} that admits and bridges.
 * @throws StartupError when a plugin, a certificate or the program cannot be loaded; nothing is left open.
 */
export async function openEndpoint(config: ProxyConfig, logger: Logger, role: EndpointRole = {}): Promise<OpenedEndpoint> {
  // Read now, so that a missing --ssl-target-ca file stops the start instead of failing each session.
  if (config.target?.kind === 'tcp' && config.target.tls) targetTlsContext(config.target.tls.ca);
  if (config.tokens?.targetTls) targetTlsContext(config.tokens.targetTls.ca);
  // Before the token plugin, which may hold a connection open: a bad auth source stops the start here.
  const auth = config.auth && (await loadAuthPlugin(config.auth.plugin, config.auth.source, logger));
  const policy = config.allowTarget && new TargetPolicy(config.allowTarget, { preferIpv6: config.preferIpv6 });
  const targets = role.targets ?? (await openTargets(config, logger, role.metrics));
  const forwarded = createForwardedResolver(config.trustedProxies, logger);
  limitRefusalLog(logger, config.limits.refusalLogInterval);
  const limits = new Limits(config.limits, config.trustedProxies, logger, { ...role.limits, counter: role.metrics?.refused });
  const admit = guardAdmission(createAdmission({ auth, targets }), policy);
  const endpoint = new Endpoint({
    forwarded,
    targetProxyProtocol: config.targetProxyProtocol,
    admit: limits.guardsHandshakes ? limits.guard(admit) : admit,
    maxSessionDuration: config.limits.maxSessionDuration,
    maxMessageSize: config.maxMessageSize,
    maxUnfinished: config.maxUnfinished,
    connect: { preferIpv6: config.preferIpv6, timeoutMs: config.connectTimeout * 1000 },
    logger,
    hooks: config.traffic ? [trafficHook] : [],
    record: config.record,
    recordMaxBytes: config.recordMaxBytes,
    heartbeat: config.heartbeat,
    shutdownTimeout: config.shutdownTimeout,
    sessionIds: role.sessionIds,
    metrics: role.metrics,
  });
  return { endpoint, targets, auth, forwarded, limits };
}

/** The wrapped program, the token plugin, or the fixed target. */
async function openTargets(config: ProxyConfig, logger: Logger, metrics: ProxyMetrics | undefined): Promise<TargetSource> {
  if (config.wrap) return WrappedProgram.prepare(config.wrap, logger);
  const { tokens } = config;
  if (tokens) {
    const plugin = await loadTokenPlugin(tokens.plugin, tokens.source, logger, {
      timeoutMs: lookupTimeoutFor(config.handshakeTimeout),
      targetTls: tokens.targetTls,
      cache: tokens.cache,
    });
    const name = tokenPluginName(tokens);
    return tokenTargets(plugin, {
      location: tokens,
      name,
      lookupDone: metrics && ((seconds) => metrics.tokenLookedUp(name, seconds)),
    });
  }
  if (config.target) return fixedTarget(config.target);
  throw new StartupError('no target: give a target, a token plugin, or a program to wrap');
}
