import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { answerRequest, writeHttpError } from './http-response.js';

/** What the HTTP stage hands on. */
export interface HttpStageHandlers {
  /** A request with `Connection: Upgrade`; the handler owns the socket from here. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Any other request. */
  request(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** A request the stage rejected, already answered (400, or 431 for oversized headers). */
  rejected(socket: Duplex, status: number, reason: string): void;
}

/**
 * Creates the HTTP stage: a node:http server that never listens, fed connections by the dispatcher. It
 * parses requests (malformed or oversized ones get 400 or 431) and hands upgrades and plain requests on.
 * @param maxHeaderSize the largest request head accepted, in bytes.
 * @returns the function that feeds a connection into the stage.
 */
export function createHttpStage(maxHeaderSize: number, handlers: HttpStageHandlers): (socket: Duplex) => void {
  // node:http's own Host check answers an HTTP/1.1 request without Host with a bare 400 before 'request':
  // no reason for the client, and no refusal logged or counted. The stage checks instead (below).
  const server = http.createServer({ maxHeaderSize, keepAlive: false, requireHostHeader: false });
  // A client that sends its request and then its FIN (`printf ... | nc -N`) still gets the answer; without
  // this node:http aborts the request on the FIN. (The listener allows half-open sockets for the same reason.)
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('upgrade', handlers.upgrade);
  /** The response under way on each socket (until its 'finish'), so that a parse error adds no answer of its own. */
  const responses = new WeakMap<Duplex, http.ServerResponse>();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    responses.set(req.socket, res);
    res.once('finish', () => responses.delete(req.socket));
    // RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request without Host (node:http's
    // check, turned off above), answered and reported as every other malformed request.
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      const reason = 'malformed HTTP request (HTTP/1.1 without Host)';
      answerRequest(res, 400, reason);
      handlers.rejected(req.socket, 400, reason);
      return;
    }
    handlers.request(req, res);
  });
  // node:http hands CONNECT over as a bare socket (and, with no listener, closes it unanswered): it gets
  // a response object of its own and goes where every other plain request goes (405, or --web's answer).
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as net.Socket);
    res.once('finish', () => {
      res.detachSocket(socket as net.Socket);
      socket.end();
    });
    handlers.request(req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Bytes after a request whose response is under way (a request and garbage in one write): an answer
    // now would follow the response's `Connection: close` (or cut into it), a second refusal of one
    // connection. The response is finished instead, and then the connection closed.
    const res = responses.get(socket);
    if (res) {
      res.once('finish', () => socket.end());
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const reason = tooLarge ? `request headers larger than ${maxHeaderSize} bytes` : `malformed HTTP request (${err.code ?? err.message})`;
    writeHttpError(socket, status, reason);
    handlers.rejected(socket, status, reason);
  });
  return (socket) => {
    server.emit('connection', socket);
  };
}
