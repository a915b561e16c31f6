// An Express 5 app with its own routes, and a WebSocket-to-TCP endpoint at /websockify on the same
// port.
//
//   PORT=8080 TARGET=localhost:5901 node examples/express.mjs
//   node examples/express.mjs 8080 localhost:5901
import express from 'express';
import { createUpgradeHandler } from 'websockify-ts';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const target = process.argv[3] ?? process.env.TARGET ?? 'localhost:5901';
const host = process.env.HOST ?? '127.0.0.1';

const bridge = await createUpgradeHandler({ path: '/websockify', target });

// The session events are for the app's own bookkeeping (the library logs each session on stderr).
const totals = { sessions: 0, bytesFromClient: 0, bytesFromTarget: 0 };
bridge.on('session-close', (session) => {
  totals.sessions++;
  totals.bytesFromClient += session.bytesFromClient;
  totals.bytesFromTarget += session.bytesFromTarget;
  console.log(`session ${session.id} closed by ${session.initiator} (code ${session.code}) after ${session.durationMs} ms`);
});

const page =
  '<!doctype html><title>websockify-ts</title><p>WebSocket endpoint: <code>/websockify</code>; see <a href="/status">/status</a></p>\n';

const app = express();
app.get('/', (_req, res) => {
  res.type('html').send(page);
});
app.get('/status', (_req, res) => {
  res.json({ target, open: bridge.sessionCount, ...totals });
});

// Express never sees WebSocket handshakes: node:http emits them as the server's 'upgrade' event, so
// an app.use('/websockify', ...) would never be called. The bridge goes on the server that
// app.listen() returns; attaching after the call is early enough, as no connection is accepted
// before this module's code has run.
const server = app.listen(port, host, (err) => {
  if (err) {
    console.error(`cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`listening on http://${host.includes(':') ? `[${host}]` : host}:${server.address().port}`);
});
bridge.attach(server);

let stopping = false;
async function stop() {
  // A second Ctrl-C does not wait for the sessions.
  if (stopping) process.exit(1);
  stopping = true;
  // Sessions first (closed with 1001, going away), then the server, which waits for requests in flight.
  await bridge.close();
  server.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
