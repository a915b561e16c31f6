// A plain node:http server that serves its own page at / and bridges WebSocket connections at
// /websockify to a TCP target, all on one port.
//
//   PORT=8080 TARGET=localhost:5901 node examples/http-server.mjs
//   node examples/http-server.mjs 8080 localhost:5901
import http from 'node:http';
import { createUpgradeHandler } from 'websockify-ts';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const target = process.argv[3] ?? process.env.TARGET ?? 'localhost:5901';
const host = process.env.HOST ?? '127.0.0.1';

// Before the server listens, so that no handshake can arrive before the bridge is there. Each
// session is logged on stderr, as the websockify command logs it.
const bridge = await createUpgradeHandler({ path: '/websockify', target });

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>websockify-ts</title><p>WebSocket endpoint: <code>/websockify</code>, proxying to ${target}</p>\n`);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
});
// WebSocket handshakes never reach the request handler above: node:http emits them as 'upgrade'.
// attach() takes those for /websockify and answers 404 to any other path.
bridge.attach(server);

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, resolve);
});
console.log(`listening on http://${host.includes(':') ? `[${host}]` : host}:${server.address().port}`);

let stopping = false;
async function stop() {
  // A second Ctrl-C does not wait for the sessions.
  if (stopping) process.exit(1);
  stopping = true;
  // Sessions first: new handshakes get 503 and open sessions are closed with 1001 (going away).
  // server.close() then waits only for plain requests still in flight.
  await bridge.close();
  server.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
