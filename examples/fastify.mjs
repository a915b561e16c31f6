// A Fastify 5 app with its own routes, and a WebSocket-to-TCP endpoint at /websockify on the same
// port. Sessions are logged through Fastify's own logger, as JSON lines on stdout.
//
//   PORT=8080 TARGET=localhost:5901 node examples/fastify.mjs
//   node examples/fastify.mjs 8080 localhost:5901
import Fastify from 'fastify';
import { createUpgradeHandler } from 'websockify-ts';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const target = process.argv[3] ?? process.env.TARGET ?? 'localhost:5901';
const host = process.env.HOST ?? '127.0.0.1';

const fastify = Fastify({ logger: true });
// fastify.log is a pino logger: the sessions' lines come out with the app's own.
const bridge = await createUpgradeHandler({ path: '/websockify', target, logger: fastify.log });

const page =
  '<!doctype html><title>websockify-ts</title><p>WebSocket endpoint: <code>/websockify</code>; see <a href="/status">/status</a></p>\n';

fastify.get('/', async (_request, reply) => {
  reply.type('text/html; charset=utf-8');
  return page;
});
fastify.get('/status', async () => ({ target, open: bridge.sessionCount }));

// Fastify's routes never see WebSocket handshakes: node:http emits them as 'upgrade' on
// fastify.server, the underlying http.Server. onReady runs before the server listens.
fastify.addHook('onReady', async () => {
  bridge.attach(fastify.server);
});
// preClose runs before Fastify closes the server, which waits for every connection to end: the
// sessions must be closed first (with 1001, going away), or fastify.close() would wait for them.
fastify.addHook('preClose', () => bridge.close());

await fastify.listen({ port, host });
console.log(`listening on http://${host.includes(':') ? `[${host}]` : host}:${fastify.server.address().port}`);

let stopping = false;
async function stop() {
  // A second Ctrl-C does not wait for the sessions.
  if (stopping) process.exit(1);
  stopping = true;
  await fastify.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
