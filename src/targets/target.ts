import { formatHostPort } from './address.js';

/** TLS to the target (`--ssl-target`). */
export interface TargetTls {
  /** Trust only the authorities in this PEM file (`--ssl-target-ca`); default Node's trust store. */
  ca?: string | undefined;
  /** Accept any certificate, unverified (`--ssl-target-insecure`). */
  insecure: boolean;
  /** Name sent as SNI and checked against the certificate; default the target host unless it is an IP literal. */
  servername?: string | undefined;
}

/**
 * Where a WebSocket's bytes go. Every stage that resolves a target (a fixed target, later token
 * plugins and wrapped programs) produces one of these.
 */
export type Target = { kind: 'tcp'; host: string; port: number; tls?: TargetTls | undefined } | { kind: 'unix'; path: string };

/** A target as it appears in logs and close reasons: `host:port` or `unix:PATH`. */
export function describeTarget(target: Target): string {
  return target.kind === 'tcp' ? formatHostPort(target.host, target.port) : `unix:${target.path}`;
}
