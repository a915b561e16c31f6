import dgram from 'node:dgram';

/** A syslog-over-UDP receiver on loopback. */
export interface UdpReceiver {
  port: number;
  /** The datagrams received so far. */
  raw: Buffer[];
  /** The same, as UTF-8 text. */
  texts(): string[];
  close(): Promise<void>;
}

/** Starts a real syslog-over-UDP receiver on a free loopback port. */
export async function udpReceiver(): Promise<UdpReceiver> {
  const socket = dgram.createSocket('udp4');
  const raw: Buffer[] = [];
  socket.on('message', (msg) => raw.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    raw,
    texts: () => raw.map((b) => b.toString('utf8')),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
