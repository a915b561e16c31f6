// Plays a recording's messages into a view in time: at a speed, as fast as possible, or up to a point
// (seeking). A view can only go forwards, so seeking backwards starts a new view and replays from the start.
import type { MessageStore } from './store.js';
import type { ReplayView } from './view.js';

/** How long one turn may draw before the page gets the thread back, in milliseconds. */
const TURN_BUDGET_MS = 25;

/** What the page shows of the playback, read after each change. */
export interface PlaybackState {
  /** Where playback is, in ms since the session started. */
  position: number;
  /** The index of the next message to play. */
  next: number;
  playing: boolean;
  /** Set while seeking: the target and how far the replay towards it is (0 to 1). */
  seeking: { target: number; progress: number } | undefined;
  /** Bytes and messages played so far, each way. */
  toClient: { bytes: number; messages: number };
  fromClient: { bytes: number; messages: number };
}

/** Yields to the page: a task, not a microtask, so input and painting get their turn. */
const yieldToPage = (): Promise<void> =>
  new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });

/** The playback of one recording; `changed` is called after every step, for the controls. */
export class Playback {
  readonly state: PlaybackState = {
    position: 0,
    next: 0,
    playing: false,
    seeking: undefined,
    toClient: { bytes: 0, messages: 0 },
    fromClient: { bytes: 0, messages: 0 },
  };
  /** Playback speed, a factor of real time; Infinity for as fast as possible. */
  speed = 1;
  #view: ReplayView;
  #running = false;
  #lastTick = 0;
  /** Bumped by every seek, so that a seek started earlier stops where a newer one took over. */
  #generation = 0;

  constructor(
    private readonly store: MessageStore,
    private readonly makeView: () => ReplayView,
    /** Told of each client message played, by index (a terminal resizes there). */
    private readonly clientMessage: (index: number) => void,
    private readonly changed: () => void,
  ) {
    this.#view = makeView();
  }

  get view(): ReplayView {
    return this.#view;
  }

  play(): void {
    if (this.state.next >= this.store.count) this.#restart();
    this.state.playing = true;
    this.changed();
    this.#run();
  }

  pause(): void {
    this.state.playing = false;
    this.changed();
  }

  /** Moves to `ms`: forwards by playing the messages up to it at full speed, backwards by replaying from the start. */
  async seek(ms: number): Promise<void> {
    const target = Math.max(0, Math.min(ms, this.store.duration));
    const generation = ++this.#generation;
    const end = this.store.after(target);
    if (end < this.state.next) this.#restart();
    const from = this.state.next;
    this.state.seeking = { target, progress: 0 };
    this.changed();
    while (this.state.next < end) {
      if (generation !== this.#generation) return;
      this.#playUntil(end, performance.now() + TURN_BUDGET_MS);
      this.state.seeking = { target, progress: (this.state.next - from) / Math.max(1, end - from) };
      this.changed();
      await yieldToPage();
    }
    if (generation !== this.#generation) return;
    await this.#view.settled();
    if (generation !== this.#generation) return;
    this.state.position = target;
    this.state.seeking = undefined;
    this.#lastTick = performance.now();
    this.changed();
  }

  /** Resolves once everything played so far is drawn. */
  settled(): Promise<void> {
    return this.#view.settled();
  }

  dispose(): void {
    this.state.playing = false;
    this.#generation++;
    this.#view.dispose();
  }

  #restart(): void {
    this.#view.dispose();
    this.#view = this.makeView();
    Object.assign(this.state, { position: 0, next: 0, toClient: { bytes: 0, messages: 0 }, fromClient: { bytes: 0, messages: 0 } });
  }

  /** Plays messages up to index `end` (excluded) until the deadline or until the view is busy. */
  #playUntil(end: number, deadline: number): void {
    const { store, state } = this;
    while (state.next < end && !this.#view.busy()) {
      const i = state.next++;
      if (store.toClient(i)) {
        state.toClient.bytes += store.size(i);
        state.toClient.messages++;
        this.#view.feed(store.data(i));
      } else {
        state.fromClient.bytes += store.size(i);
        state.fromClient.messages++;
        this.clientMessage(i);
      }
      state.position = Math.max(state.position, store.time(i));
      if ((i & 63) === 0 && performance.now() > deadline) break;
    }
  }

  /** The play loop: one turn per frame at a set speed, back to back as fast as possible. */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#lastTick = performance.now();
    try {
      while (this.state.playing) {
        if (this.state.seeking) {
          await new Promise((resolve) => setTimeout(resolve, 16));
          this.#lastTick = performance.now();
          continue;
        }
        const now = performance.now();
        if (this.speed === Number.POSITIVE_INFINITY) {
          this.#playUntil(this.store.count, now + TURN_BUDGET_MS);
        } else {
          const position = this.state.position + (now - this.#lastTick) * this.speed;
          this.#playUntil(this.store.after(position), now + TURN_BUDGET_MS);
          // Behind (a busy view): the clock waits for the drawing rather than skip it.
          if (this.state.next >= this.store.after(position)) this.state.position = Math.min(position, this.store.duration);
        }
        this.#lastTick = now;
        if (this.state.next >= this.store.count) {
          await this.#view.settled();
          this.state.position = this.store.duration;
          this.state.playing = false;
        }
        this.changed();
        if (this.state.playing) await (this.speed === Number.POSITIVE_INFINITY ? yieldToPage() : new Promise((r) => setTimeout(r, 16)));
      }
    } finally {
      this.#running = false;
    }
  }
}
