import type net from 'node:net';

/**
 * Where reads from a plain (non-TLS) target socket land, through `net.connect`'s `onread`, instead of a
 * fresh 64 KiB allocation per read as Node does by default (allocating and collecting those buffers
 * was the largest cost of the download direction).
 *
 * A quiet or interactive target reads into one buffer shared by every session, whose bytes the bridge
 * copies out at once: the copy is as cheap as Node's own allocation and an idle session holds no buffer.
 * A target that fills the shared buffer is streaming, and gets a larger buffer of its own whose bytes
 * are lent to the client socket without a copy; while a write still holds them, the target is paused
 * (so the buffer is never overwritten under a pending write), and the session goes back to the shared
 * buffer, its own given up, at the first small read.
 */

/** Size of the shared buffer: Node's own read size. */
export const SHARED_READ_BYTES = 64 * 1024;
/** Size of a streaming target's own buffer: fewer, larger reads and frames. */
export const OWN_READ_BYTES = 256 * 1024;
/** A read below this many bytes ends a stream: the target's own buffer is given up. */
export const SMALL_READ_BYTES = 4 * 1024;

const shared = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);

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
      if (bytes === SHARED_READ_BYTES && this.mayOwn) this.own = Buffer.allocUnsafeSlow(OWN_READ_BYTES);
    } else if (bytes < SMALL_READ_BYTES && !lentOut) {
      this.own = undefined;
    }
  }
}
