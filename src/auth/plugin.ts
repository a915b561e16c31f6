import type { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** What an auth plugin may look at: the request as the client sent it, and what TLS proved. */
export interface AuthRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /**
   * The real client's IP address, or undefined on a Unix socket. Behind a trusted proxy
   * (`--trusted-proxy`) it is the client that proxy named, else the connection's peer.
   */
  remoteAddress: string | undefined;
  /** The connection's own peer's IP address (the trusted proxy, when one stands between), or undefined on a Unix socket. */
  peerAddress: string | undefined;
  /**
   * The client certificate verified by the TLS handshake (`--verify-client`), or undefined. This, never a
   * header such as `SSL_CLIENT_S_DN_CN`, is what certificate-based plugins trust.
   */
  peerCertificate: X509Certificate | undefined;
}

/**
 * Decides whether a request may pass (`--auth-plugin`): WebSocket handshakes always, web requests with
 * `--web-auth`. Built-in plugins and users' own modules implement this one interface.
 */
export interface AuthPlugin {
  /**
   * Returns when the request may pass.
   * @throws HttpError (401 with a `WWW-Authenticate` header, or 403) to refuse it.
   */
  authenticate(request: AuthRequest): Promise<void> | void;
}
