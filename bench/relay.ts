// Helper processes of the bench, each pinned by the runner:
//   relay PORT TARGET_PORT [CERT KEY]  the "plain Node TCP relay" limit: socket.pipe both ways (TLS
//                                       terminated first when CERT and KEY are given);
//   echo PORT                          an echo target in its own process, for the many-connection
//                                       workload, so that the load process holds one fd per connection.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [mode, portText, targetText, cert, key] = process.argv.slice(2);
const port = Number(portText);

/** Pipes a client to a new target connection both ways; either side failing drops both. */
function relay(client: net.Socket): void {
  const target = net.connect({ host: '127.0.0.1', port: Number(targetText), noDelay: true });
  client.setNoDelay(true);
  client.pipe(target);
  target.pipe(client);
  const drop = (): void => {
    client.destroy();
    target.destroy();
  };
  client.on('error', drop);
  target.on('error', drop);
}

let server: net.Server;
if (mode === 'relay' && cert && key) {
  server = tls.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, relay);
} else if (mode === 'relay') {
  server = net.createServer(relay);
} else if (mode === 'echo') {
  server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
} else {
  process.stderr.write('usage: relay.js relay PORT TARGET_PORT [CERT KEY] | echo PORT\n');
  process.exit(2);
}
// Accept errors (EMFILE at the fd limit) must not end the process: the bench measures where it stops.
server.on('error', (err) => process.stderr.write(`server error: ${err.message}\n`));
server.listen(port, '127.0.0.1', 4096, () => process.stdout.write('relay.js listening\n'));
process.on('SIGTERM', () => process.exit(0));
