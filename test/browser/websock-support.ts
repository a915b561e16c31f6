// The Websock module as shipped (dist/web/websock.mjs, written by scripts/build-web.mjs) and a channel the
// tests drive, shared by the Websock tests. Not web/websock.ts itself, not even its types: the root
// `tsc -p .` would then emit dist/web/websock.js over the classic-script bundle of that name. The API the
// tests rely on is therefore spelled out here (tsc -p web type-checks the source itself).

/** The Websock API these tests use. */
export interface Websock {
  readonly readyState: string;
  readonly protocol: string;
  readonly encoding: 'binary' | 'base64';
  readonly rQbufferSize: number;
  on(event: 'open' | 'message', handler: (...args: unknown[]) => void): void;
  on(event: 'close', handler: (event: { code?: number }) => void): void;
  on(event: 'error', handler: (error: unknown) => void): void;
  off(event: 'open' | 'message' | 'close' | 'error'): void;
  open(uri: string, protocols?: string | string[]): void;
  attach(channel: object): void;
  close(): void;
  rQlen(): number;
  rQpeek8(): number;
  rQskipBytes(len: number): void;
  rQshift8(): number;
  rQshift16(): number;
  rQshift32(): number;
  rQshiftStr(len?: number): string;
  rQshiftBytes(len?: number, copy?: boolean): Uint8Array;
  rQshiftTo(target: Uint8Array, len: number): void;
  rQpeekBytes(len: number, copy?: boolean): Uint8Array;
  rQwait(msg: string, num: number, goback?: number): boolean;
  sQpush8(num: number): void;
  sQpush16(num: number): void;
  sQpush32(num: number): void;
  sQpushString(str: string): void;
  sQpushBytes(bytes: Uint8Array): void;
  flush(): void;
  send(arr: ArrayLike<number>): void;
  send_string(str: string): void;
}
export const websockModule = (await import(new URL('../../web/websock.mjs', import.meta.url).href)) as {
  default: new (options?: { maxQueueBytes?: number }) => Websock;
  DEFAULT_MAX_QUEUE_BYTES: number;
  DEFAULT_PROTOCOLS: readonly string[];
};
export const Websock = websockModule.default;

/** A channel shaped as a WebSocket, driven by the test: it records what is sent and delivers what it is told. */
export class FakeChannel {
  binaryType = 'blob';
  protocol = '';
  readyState: number | string = 0;
  readonly sent: Array<string | Uint8Array> = [];
  closeCalls = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }
  close(): void {
    this.closeCalls++;
    this.readyState = 2;
  }
  /** Opens with the subprotocol the "server" chose. */
  open(protocol = ''): void {
    this.protocol = protocol;
    this.readyState = 1;
    this.onopen?.({ type: 'open' });
  }
  /** A binary message, as a browser delivers it with binaryType 'arraybuffer'. */
  deliver(bytes: Uint8Array | number[]): void {
    this.onmessage?.({ data: Uint8Array.from(bytes).buffer });
  }
  /** A text message. */
  deliverText(text: string): void {
    this.onmessage?.({ data: text });
  }
  /** Everything sent, base64 text decoded. */
  sentBytes(): Buffer {
    return Buffer.concat(this.sent.map((m) => (typeof m === 'string' ? Buffer.from(m, 'base64') : Buffer.from(m))));
  }
}

/** A Websock attached to an open fake channel. */
export function openSock(protocol = '', options?: { maxQueueBytes?: number }): { sock: Websock; channel: FakeChannel } {
  const sock = new Websock(options);
  const channel = new FakeChannel();
  sock.attach(channel);
  channel.open(protocol);
  return { sock, channel };
}
