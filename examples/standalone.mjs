// The whole proxy, as the websockify command runs it (`websockify 6080 localhost:5901`), from a
// program: the options are the command's flags in camelCase. Every path is the WebSocket endpoint.
//
//   PORT=6080 TARGET=localhost:5901 node examples/standalone.mjs
//   node examples/standalone.mjs 6080 localhost:5901
import { createProxy } from 'websockify-ts';

const port = Number(process.argv[2] ?? process.env.PORT ?? 6080);
const target = process.argv[3] ?? process.env.TARGET ?? 'localhost:5901';
const host = process.env.HOST ?? '127.0.0.1';

// The proxy logs on stderr as the command does; the events are for the program's own use.
const proxy = createProxy({ listen: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, target });
proxy.on('session-open', (session) => {
  console.log(`session ${session.id} open: ${session.client} -> ${session.target} (${session.protocol}, ${session.path})`);
});
proxy.on('session-close', (session) => {
  console.log(
    `session ${session.id} closed by ${session.initiator} (code ${session.code}): ` +
      `${session.bytesFromClient} bytes in, ${session.bytesFromTarget} bytes out, ${session.durationMs} ms`,
  );
});

const where = await proxy.listen();
console.log(`listening on http://${where}`);

let stopping = false;
async function stop() {
  // A second Ctrl-C does not wait for the sessions.
  if (stopping) process.exit(1);
  stopping = true;
  // Stops accepting, closes each session with 1001 (going away), then resolves.
  await proxy.close('signal');
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
