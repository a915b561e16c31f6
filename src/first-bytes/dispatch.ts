import type { Duplex } from 'node:stream';

/**
 * A protocol that a connection's first bytes identify (TLS, the Flash policy request, ...). Routes are
 * tried in order; a connection that no route claims goes to the fallback (HTTP).
 */
export interface FirstBytesRoute {
  /** Short name for logs. */
  readonly name: string;
  /** true: the bytes are this protocol's; false: they are not; undefined: too few bytes to tell. */
  match(head: Buffer): boolean | undefined;
  /**
   * Takes over the socket. The sniffed bytes have been pushed back, so it reads them again. It must
   * attach its reader before it returns, or pause the socket until it does (a flowing socket with no
   * reader drops its data).
   */
  handle(socket: Duplex): void;
}

/** Options for {@link createDispatcher}. */
export interface DispatchOptions {
  routes: readonly FirstBytesRoute[];
  /** Receives every connection that no route claims. */
  fallback: (socket: Duplex) => void;
  /** Stop waiting for more bytes to decide after this many; the fallback then gets it. Default 64. */
  maxSniffBytes?: number;
}

/**
 * Creates the first-bytes dispatch: it reads until the routes can decide, pushes the bytes back with
 * `unshift`, and hands the socket on, untouched, to the route (or the fallback). A TLS route can feed its
 * decrypted stream to another dispatcher built from the remaining routes.
 */
export function createDispatcher(options: DispatchOptions): (socket: Duplex) => void {
  const maxSniff = options.maxSniffBytes ?? 64;
  return (socket) => {
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      let undecided = false;
      for (const route of options.routes) {
        const verdict = route.match(head);
        if (verdict === true) {
          handOver(route.handle);
          return;
        }
        if (verdict === undefined) undecided = true;
      }
      if (!undecided || head.length >= maxSniff) handOver(options.fallback);
    };
    // The client finished sending before its bytes meant anything: nothing will ever be decided.
    const onEnd = (): void => void socket.destroy();
    const handOver = (next: (socket: Duplex) => void): void => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      // Paused, the pushed-back bytes wait in the buffer. resume() only emits them on the next tick, by
      // which time `next` has attached its reader, or paused the socket to read later (and keeps it paused).
      socket.pause();
      socket.unshift(head);
      socket.resume();
      next(socket);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
  };
}
