import { formatHostPort } from './address.js';

/**
 * Where a WebSocket's bytes go. Every stage that resolves a target (a fixed target, later token
 * plugins and wrapped programs) produces one of these.
 */
export type Target =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/** A target as it appears in logs and close reasons: `host:port` or `unix:PATH`. */
export function describeTarget(target: Target): string {
  return target.kind === 'tcp' ? formatHostPort(target.host, target.port) : `unix:${target.path}`;
}
