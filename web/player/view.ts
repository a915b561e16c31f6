// What the player asks of a way of drawing a recording (a VNC canvas, a terminal).

/** Draws the bytes a recorded server sent, in order, from the session's start. */
export interface ReplayView {
  /** Draws the next bytes from the server. */
  feed(data: Uint8Array): void;
  /** True while it is still working through what it was fed: playback waits rather than pile up more. */
  busy(): boolean;
  /** Resolves once everything fed so far is drawn. */
  settled(): Promise<void>;
  /** Takes it off the page. */
  dispose(): void;
}
