#!/usr/bin/env node
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createProxy } from '../index.js';

/**
 * The quick start: a small line service on a loopback port (it greets, then echoes each line back in
 * upper case), the proxy in front of it on port 6080 (or the first argument) serving the browser pages,
 * and one round trip through the proxy to show it works.
 */
async function demo(): Promise<void> {
  const port = Number(process.argv[2] ?? 6080);
  const service = net.createServer((socket) => {
    socket.write('Hello from the websockify-ts demo service. Type a line and it comes back in upper case.\r\n');
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('utf8');
      for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
        socket.write(`${pending.slice(0, newline).replace(/\r$/, '').toUpperCase()}\r\n`);
        pending = pending.slice(newline + 1);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  const servicePort = (service.address() as net.AddressInfo).port;

  const proxy = createProxy({
    listen: port,
    target: `127.0.0.1:${servicePort}`,
    // The browser side (wstelnet.html, websock.js), built next to this file by `npm install`.
    web: fileURLToPath(new URL('../../web', import.meta.url)),
  });
  await proxy.listen();

  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary']);
  let received = '';
  ws.on('message', (data: Buffer) => {
    received += data.toString();
    if (received.includes('HELLO THROUGH THE PROXY')) {
      process.stdout.write(`\nDemo round trip through ws://localhost:${port}/ worked. The service said:\n${received}\n`);
      process.stdout.write(`The proxy keeps running on port ${port} in front of the demo service (127.0.0.1:${servicePort}).\n`);
      process.stdout.write(`Open http://localhost:${port}/wstelnet.html?autoconnect=1 in a browser to talk to it; Ctrl-C stops.\n`);
      ws.close();
    }
  });
  ws.on('open', () => ws.send(Buffer.from('hello through the proxy\n')));
  ws.on('error', (err) => process.stderr.write(`demo client: ${err.message}\n`));

  const stop = (): void => {
    void proxy.close('demo stopped').then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await demo();
