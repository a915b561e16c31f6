// The client host of the fleet test: run inside its network namespace, it opens and drives WebSocket
// sessions (and raw connections) as the test asks, one JSON request per stdin line, one JSON answer per
// stdout line. Sessions stay open between requests, so the test can hold them across a drain or a kill.
import net from 'node:net';
import readline from 'node:readline';
import { WebSocket } from 'ws';

/** A request from the test; every one has an `id` its answer repeats. */
export type ClientRequest =
  | { op: 'open'; id: number; session: string; url: string; headers?: Record<string, string> }
  | { op: 'echo'; id: number; session: string; text: string }
  | { op: 'close'; id: number; session: string }
  /** Waits until the session is closed (by the other end), up to timeoutMs. */
  | { op: 'closed'; id: number; session: string; timeoutMs: number }
  /** Sends raw bytes on a new TCP connection and returns what came back until the close. */
  | { op: 'raw'; id: number; host: string; port: number; data: string; timeoutMs: number };

/** The answer to a request: `ok`, or `error`, and what the operation gives. */
export interface ClientAnswer {
  id: number;
  ok: boolean;
  error?: string;
  /** open: the session's local port (its address as the proxy sees it). */
  localPort?: number;
  /** echo: the text that came back. */
  text?: string;
  /** close, closed: the close code. */
  code?: number;
  /** raw: everything received (base64) and whether the peer closed. */
  received?: string;
  closedByPeer?: boolean;
}

const sessions = new Map<string, { ws: WebSocket; closed: Promise<number> }>();

function answer(reply: ClientAnswer): void {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

function session(name: string): { ws: WebSocket; closed: Promise<number> } {
  const found = sessions.get(name);
  if (!found) throw new Error(`no session ${name}`);
  return found;
}

function timeout<T>(ms: number, what: string): Promise<T> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms));
}

async function serve(request: ClientRequest): Promise<Omit<ClientAnswer, 'id' | 'ok'>> {
  switch (request.op) {
    case 'open': {
      const ws = new WebSocket(request.url, 'binary', { perMessageDeflate: false, headers: request.headers ?? {} });
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.on('error', () => undefined);
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
          ws.once('error', reject);
        }),
        timeout(10_000, 'open'),
      ]);
      sessions.set(request.session, { ws, closed });
      return { localPort: (ws as unknown as { _socket: net.Socket })._socket.localPort ?? 0 };
    }
    case 'echo': {
      const { ws } = session(request.session);
      const reply = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
      ws.send(Buffer.from(request.text));
      return { text: await Promise.race([reply, timeout<string>(10_000, 'echo')]) };
    }
    case 'close': {
      const { ws, closed } = session(request.session);
      ws.close();
      return { code: await closed };
    }
    case 'closed': {
      const { closed } = session(request.session);
      return { code: await Promise.race([closed, timeout<number>(request.timeoutMs, 'closed')]) };
    }
    case 'raw': {
      const socket = net.connect(request.port, request.host);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.write(Buffer.from(request.data, 'base64'));
      const closedByPeer = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), request.timeoutMs);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        socket.once('error', () => undefined);
      });
      socket.destroy();
      return { received: Buffer.concat(chunks).toString('base64'), closedByPeer };
    }
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line) as ClientRequest;
  serve(request).then(
    (result) => answer({ id: request.id, ok: true, ...result }),
    (err: Error) => answer({ id: request.id, ok: false, error: err.message }),
  );
});
