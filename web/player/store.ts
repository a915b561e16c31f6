// The decoded messages of a recording, in compact arrays: what the player keeps in memory.

/** The marker of a message to the client ('{'). */
export const TO_CLIENT = 0x7b;

/** Server data is packed into blocks of this size; a larger message gets a block of its own. */
const BLOCK_BYTES = 1024 * 1024;

/**
 * Every message's time, direction and size (21 bytes each), and the bytes of those sent to the client,
 * which are what the player draws. The client's bytes are not kept: nothing is drawn from them.
 */
export class MessageStore {
  count = 0;
  /** The time of the last message, in ms since the session started. */
  duration = 0;
  bytesToClient = 0;
  bytesFromClient = 0;
  messagesToClient = 0;
  #times = new Float64Array(1024);
  #sizes = new Uint32Array(1024);
  #toClient = new Uint8Array(1024);
  #block = new Uint32Array(1024);
  #offset = new Uint32Array(1024);
  readonly #blocks: Uint8Array[] = [];
  #used = 0;

  /** Appends a message; its data is copied when it goes to the client. */
  add(ms: number, toClient: boolean, data: Uint8Array): void {
    if (this.count === this.#times.length) this.#grow();
    const i = this.count++;
    this.#times[i] = ms;
    this.#sizes[i] = data.length;
    this.#toClient[i] = toClient ? 1 : 0;
    if (ms > this.duration) this.duration = ms;
    if (!toClient) {
      this.bytesFromClient += data.length;
      return;
    }
    this.bytesToClient += data.length;
    this.messagesToClient++;
    if (this.#blocks.length === 0 || data.length > BLOCK_BYTES - this.#used) {
      this.#blocks.push(new Uint8Array(Math.max(BLOCK_BYTES, data.length)));
      this.#used = 0;
    }
    const block = this.#blocks.length - 1;
    this.#blocks[block]!.set(data, this.#used);
    this.#block[i] = block;
    this.#offset[i] = this.#used;
    this.#used += data.length;
  }

  time(i: number): number {
    return this.#times[i]!;
  }

  size(i: number): number {
    return this.#sizes[i]!;
  }

  toClient(i: number): boolean {
    return this.#toClient[i] === 1;
  }

  /** The bytes of message `i`, which went to the client (a view, valid as long as the store). */
  data(i: number): Uint8Array {
    const start = this.#offset[i]!;
    return this.#blocks[this.#block[i]!]!.subarray(start, start + this.#sizes[i]!);
  }

  /** The index of the first message later than `ms` (so all before it are due at `ms`). */
  after(ms: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#times[mid]! <= ms) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Bytes held for the messages (the server's data and the index), for the page to show. */
  get memoryBytes(): number {
    return this.#blocks.reduce((sum, block) => sum + block.length, 0) + this.#times.length * 21;
  }

  #grow(): void {
    const size = this.#times.length * 2;
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(old: T, next: T): T => {
      next.set(old as never);
      return next;
    };
    this.#times = grow(this.#times, new Float64Array(size));
    this.#sizes = grow(this.#sizes, new Uint32Array(size));
    this.#toClient = grow(this.#toClient, new Uint8Array(size));
    this.#block = grow(this.#block, new Uint32Array(size));
    this.#offset = grow(this.#offset, new Uint32Array(size));
  }
}
