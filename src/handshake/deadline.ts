import type { Duplex } from 'node:stream';

const deadlines = new WeakMap<Duplex, NodeJS.Timeout>();

/**
 * Gives a connection a bounded time to complete its handshake (first bytes, TLS, HTTP request), so that
 * slow or silent clients cannot hold sockets open. `onExpire` decides what, if anything, to answer.
 * Arming a socket again replaces its deadline (a later stage may grant its own time).
 */
export function armDeadline(socket: Duplex, ms: number, onExpire: (socket: Duplex) => void): void {
  const armed = deadlines.has(socket);
  clearTimeout(deadlines.get(socket));
  const timer = setTimeout(() => {
    deadlines.delete(socket);
    if (!socket.destroyed) onExpire(socket);
  }, ms);
  deadlines.set(socket, timer);
  if (!armed) socket.once('close', () => disarmDeadline(socket));
}

/** The handshake finished (or the socket went away): cancel its deadline. */
export function disarmDeadline(socket: Duplex): void {
  clearTimeout(deadlines.get(socket));
  deadlines.delete(socket);
}
