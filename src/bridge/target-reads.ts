import type net from 'node:net';

/**
 * Where reads from a plain (non-TLS) target socket land, through `net.connect`'s `onread`, instead of a
 * fresh 64 KiB allocation per read as Node does by default (allocating and collecting those buffers
 * was the largest cost of the download direction).
 *
 * A quiet or interactive target reads into one buffer shared by every session, whose bytes the bridge
 * copies out at once (into a recycled block when they are many): an idle session holds no buffer.
 * A target that fills the shared buffer is streaming, and gets a larger buffer of its own whose bytes
 * are lent to the client socket without a copy; while a write still holds them, the target is paused
 * (so the buffer is never overwritten under a pending write), and the session goes back to the shared
 * buffer, its own given up, at the first small read or when the target closes.
 *
 * At most {@link MAX_OWN_BUFFERS} sessions hold a buffer of their own at once, so a crowd of targets
 * that streamed once and then went quiet holds a bounded amount of memory; the others read through
 * the shared buffer, at the cost of Node's default path. Given-up buffers are kept for reuse.
 */

/** Size of the shared buffer: Node's own read size. */
export const SHARED_READ_BYTES = 64 * 1024;
/** Size of a streaming target's own buffer: fewer, larger reads and frames. */
export const OWN_READ_BYTES = 256 * 1024;
/** A read below this many bytes ends a stream: the target's own buffer is given up. */
export const SMALL_READ_BYTES = 4 * 1024;
/** Sessions that may hold a buffer of their own at once (8 MiB in all). */
export const MAX_OWN_BUFFERS = 32;

/** A read from the shared buffer at least this long is copied into a recycled block, not a new allocation. */
export const RECYCLED_COPY_BYTES = 4 * 1024;
/** Spare copy blocks kept for reuse (4 MiB in all). */
export const MAX_SPARE_COPY_BLOCKS = 64;

const shared = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
/** Copy blocks whose write has completed, for the next copies. */
const spareCopyBlocks: Buffer[] = [];
/** Own buffers held by sessions now. */
let held = 0;
/** Given-up buffers that no write holds any more, for the next streaming session. */
const spare: Buffer[] = [];

/**
 * Copies a read out of the shared buffer into a block of {@link SHARED_READ_BYTES} that is used again
 * once its write completes ({@link recycleCopy}). A new buffer per copy is memory outside V8's heap that
 * V8 counts towards its next full collection: a thousand targets sending bursts of tens of KiB made it
 * collect every 150 ms, with pauses of up to 10 ms in every session's latency.
 * @returns the bytes, in a view of the block.
 */
export function copyToBlock(view: Uint8Array): Buffer {
  const block = spareCopyBlocks.pop() ?? Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  block.set(view);
  return block.subarray(0, view.length);
}

/** Gives back the block of a {@link copyToBlock} copy once nothing reads it any more (its write completed). */
export function recycleCopy(copy: Buffer): void {
  if (spareCopyBlocks.length < MAX_SPARE_COPY_BLOCKS) spareCopyBlocks.push(Buffer.from(copy.buffer, copy.byteOffset, SHARED_READ_BYTES));
}

/** How many sessions hold a buffer of their own now. */
export function ownBuffersHeld(): number {
  return held;
}

/** Handles one read of `bytes` bytes in `buffer` (called with the socket as `this`); false pauses the socket. */
export type ReadCallback = (this: net.Socket, bytes: number, buffer: Uint8Array) => boolean;

/** One target socket's read buffers. */
export class TargetReads {
  private own: Buffer | undefined;
  /** Whether this session may stream into its own buffer (only when its bytes can be lent to the client). */
  mayOwn = true;

  /** The `onread` option for `net.connect`. Node calls `buffer` unbound, hence the arrow. */
  readonly onread: { buffer: () => Uint8Array; callback: ReadCallback };

  constructor(callback: ReadCallback) {
    this.onread = { buffer: () => this.own ?? shared, callback };
  }

  /** True when `buffer` is this session's own, whose bytes may be lent instead of copied. */
  isOwn(buffer: Uint8Array): boolean {
    return buffer === this.own;
  }

  /**
   * Chooses the buffer of the next read from the size of this one.
   * @param lentOut a write still holds bytes of the own buffer (the socket is paused until it completes).
   */
  afterRead(bytes: number, lentOut: boolean): void {
    if (this.own === undefined) {
      if (bytes === SHARED_READ_BYTES && this.mayOwn && held < MAX_OWN_BUFFERS) {
        held++;
        this.own = spare.pop() ?? Buffer.allocUnsafeSlow(OWN_READ_BYTES);
      }
    } else if (bytes < SMALL_READ_BYTES && !lentOut) {
      this.release(false);
    }
  }

  /**
   * Gives the own buffer up (the target closed, or stopped streaming). Bytes still lent out keep it
   * from reuse: it is left to the garbage collector once their write completes.
   */
  release(lentOut: boolean): void {
    if (this.own === undefined) return;
    held--;
    if (!lentOut) spare.push(this.own);
    this.own = undefined;
  }
}
