import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Admission } from '../admission/admission.js';
import { chooseSubprotocol, parseOfferedProtocols, type SubprotocolChoice } from '../bridge/encoding.js';
import { MAX_MESSAGE_FRAGMENTS } from '../bridge/protocol-errors.js';
import { HttpError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { disarmDeadline } from './deadline.js';
import { writeHttpError } from './http-response.js';

/** A completed WebSocket handshake, handed to the session stage. */
export interface Upgraded {
  ws: WebSocket;
  /** The socket under `ws` (plain or TLS), whose write backlog the bridge watches. */
  socket: Duplex;
  req: http.IncomingMessage;
  choice: SubprotocolChoice;
  /** Where this connection goes, decided by the route stage before the upgrade. */
  target: Target;
}

/** Options for {@link createUpgrader}. */
export interface UpgraderOptions {
  /** Largest message accepted from a client, in bytes. */
  maxMessageSize: number;
  /** The route stage: auth, target resolution, policy; refuses with an HttpError before any upgrade. */
  admit: Admission;
  /** Receives each WebSocket once the 101 response is written. */
  accepted(upgraded: Upgraded): void;
  /** Told of each refused handshake, already answered with `error.status`. */
  refused(req: http.IncomingMessage, error: HttpError): void;
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;

/** Checks a request for the handshake and chooses its subprotocol; throws the HTTP answer on failure. */
function validate(req: http.IncomingMessage): SubprotocolChoice {
  if (req.method !== 'GET') throw new HttpError(405, `WebSocket handshake must use GET, not ${req.method}`, { Allow: 'GET' });
  const upgrade = req.headers.upgrade ?? '';
  if (upgrade.toLowerCase() !== 'websocket') throw new HttpError(400, `unsupported Upgrade: '${upgrade}' (expected websocket)`);
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    // RFC 6455 section 4.4: 426 with the versions this server speaks.
    throw new HttpError(426, `unsupported Sec-WebSocket-Version: '${version ?? ''}' (expected 13)`, {
      'Sec-WebSocket-Version': '13',
    });
  }
  if (!KEY.test(req.headers['sec-websocket-key'] ?? '')) throw new HttpError(400, 'missing or malformed Sec-WebSocket-Key');
  return chooseSubprotocol(parseOfferedProtocols(req.headers['sec-websocket-protocol']));
}

/**
 * Creates the upgrade stage: validates the handshake, answers failures with an HTTP status and reason,
 * and completes the rest with `ws` (compression off, message size bounded).
 * @returns the handler for node:http's 'upgrade' event.
 */
export function createUpgrader(options: UpgraderOptions): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
  const choices = new WeakMap<http.IncomingMessage, SubprotocolChoice>();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    clientTracking: false,
    maxPayload: options.maxMessageSize,
    maxFragments: MAX_MESSAGE_FRAGMENTS,
    // RFC 6455 section 8.1: a close reason (or text frame) that is not UTF-8 fails the connection (1007).
    // A base64 text message costs one more pass over ASCII, a fraction of its decoding.
    skipUTF8Validation: false,
    // The bridge answers pings itself: ws would drop a client whose 61st pong is still being written.
    autoPong: false,
    handleProtocols: (_offered, req) => choices.get(req)?.protocol ?? false,
  });
  const refuse = (req: http.IncomingMessage, socket: Duplex, err: HttpError): void => {
    writeHttpError(socket, err.status, err.message, err.headers);
    options.refused(req, err);
  };
  // What `validate` lets through and ws still refuses (a malformed protocol list, such as one naming a
  // protocol twice) is answered and logged like every other refusal; only 400s remain for ws to find.
  wss.on('wsClientError', (err, socket, req) => refuse(req, socket, new HttpError(400, err.message)));
  return (req, socket, head) => {
    let choice: SubprotocolChoice;
    try {
      choice = validate(req);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      refuse(req, socket, err);
      return;
    }
    choices.set(req, choice);
    options.admit(req).then(
      (target) => {
        if (socket.destroyed) return; // the client left while the route was decided
        wss.handleUpgrade(req, socket, head, (ws) => {
          disarmDeadline(socket);
          options.accepted({ ws, socket, req, choice, target });
        });
      },
      (err: unknown) => {
        // A plugin's own failure must not take the proxy down: the client gets 500 and the log the error.
        const refusal =
          err instanceof HttpError ? err : new HttpError(500, `internal error while routing: ${(err as Error)?.message ?? String(err)}`);
        refuse(req, socket, refusal);
      },
    );
  };
}
