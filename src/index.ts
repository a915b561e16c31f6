// The library's public API: what `import ... from 'websockify-ts'` gives. docs/API.md describes each export.

export type { AuthPluginContext, AuthPluginFactory } from './auth/load.js';
export { builtInAuthPlugins } from './auth/load.js';
export type { AuthPlugin, AuthRequest } from './auth/plugin.js';
export type { BridgeSummary, Initiator } from './bridge/bridge.js';
export type { ClientSession, ClientSummary } from './client/connect.js';
export { connectToWebSocket } from './client/connect.js';
export type { ClientListener, ClientListenOptions } from './client/listen.js';
export { listenForClients } from './client/listen.js';
export type { ClientOptions } from './client/options.js';
export type { EndpointEvents } from './endpoint/endpoint.js';
export type { SessionEndInfo, SessionInfo } from './endpoint/session.js';
export type { UpgradeHandler, UpgradeHandlerOptions } from './endpoint/upgrade-handler.js';
export { createUpgradeHandler } from './endpoint/upgrade-handler.js';
export { HttpError, StartupError, UsageError } from './errors.js';
export type { Logger, LogOptions } from './log/logger.js';
export { createLogger } from './log/logger.js';
export { REFUSAL_REASONS, type RefusalReason } from './metrics/refusals.js';
export type { ProxyOptions } from './options.js';
export { createProxy } from './server/create-proxy.js';
export type { ProxyEvents, ProxyServer } from './server/proxy.js';
export type { Target, TargetTls } from './targets/target.js';
export { builtInTokenPlugins } from './tokens/load.js';
export type { TokenLookupRequest, TokenPlugin, TokenPluginContext, TokenPluginFactory } from './tokens/plugin.js';
export { TokenRejectedError, TokenSourceError } from './tokens/plugin.js';
export { packageVersion } from './version.js';
