import net from 'node:net';

/** A TCP server on loopback for tests, with every accepted socket tracked so that close() is prompt. */
export interface TestServer {
  server: net.Server;
  port: number;
  /** Resolves with the next accepted connection. */
  nextConnection(): Promise<net.Socket>;
  close(): Promise<void>;
}

/**
 * Starts a TCP server on 127.0.0.1 (or `host`) with a random port; `onConnection` gets each socket.
 * Sockets allow half-open, so a test can observe the proxy's FIN separately from its own.
 */
export async function startServer(onConnection: (socket: net.Socket) => void = () => undefined, host = '127.0.0.1'): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const waiting: Array<(socket: net.Socket) => void> = [];
  const backlog: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else backlog.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    nextConnection: () => {
      const ready = backlog.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An echo server: every byte comes back; its FIN follows ours. */
export function startEchoServer(host?: string): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket), host);
}

/** Reads a socket to its end and resolves with everything it sent. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
