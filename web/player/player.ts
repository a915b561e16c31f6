// The session player page (player.html): loads a recording made with --record, streamed and parsed as it
// arrives, and plays it with noVNC (VNC sessions) or xterm.js through the telnet machine (text sessions).
import type { WindowSize } from '../telnet.js';
import { RecordingError, RecordingParser } from './parser.js';
import { Playback } from './playback.js';
import { MessageStore } from './store.js';
import { createTerminalView, windowSizeIn } from './terminal-view.js';
import { createVncView } from './vnc-view.js';

/** How a recording is drawn. */
type Kind = 'vnc' | 'text';

/** The terminal size of a text session that never reported one. */
const DEFAULT_SIZE: WindowSize = { cols: 80, rows: 24 };
/** The page gets the thread back at least this often while a file is parsed, in milliseconds. */
const PARSE_SLICE_MS = 40;

/** A recording as loaded: its messages, what the file says of its session, and how reading it ended. */
interface Loaded {
  name: string;
  store: MessageStore;
  variables: Map<string, string>;
  /** Terminal sizes reported by the client (telnet NAWS), by message index. */
  sizes: Map<number, WindowSize>;
  detected: Kind;
  error: RecordingError | Error | undefined;
}

/** What the page exposes as `window.player`, for scripts and the browser tests. */
export interface PlayerPage {
  /** Loads a recording from a URL (what `?file=` does); resolves when it is read (or failed). */
  open(url: string): Promise<void>;
  play(): void;
  pause(): void;
  seek(ms: number): Promise<void>;
  /** 0.5 to 16, or Infinity for as fast as possible. */
  setSpeed(speed: number): void;
  /** Where things are: for tests, and for anyone scripting the page. */
  state(): {
    loading: boolean;
    kind: Kind | undefined;
    count: number;
    duration: number;
    position: number;
    next: number;
    playing: boolean;
    seeking: boolean;
    message: string;
    /** Bytes the loaded recording takes in memory (server data and the index). */
    memoryBytes: number;
  };
  /** Resolves once everything played so far is drawn. */
  settled(): Promise<void>;
  /** The VNC canvas's RGB at each point (VNC recordings). */
  pixels(points: Array<[number, number]>): Array<[number, number, number]>;
  /** The VNC canvas's size. */
  canvasSize(): [number, number];
  /** The terminal's whole buffer as text, wrapped lines joined (text recordings). */
  text(): string;
}

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`player.html lacks #${id}`);
  return element as T;
};
const fileInput = byId<HTMLInputElement>('file');
const sourceLabel = byId<HTMLElement>('source');
const kindSelect = byId<HTMLSelectElement>('kind');
const messageBox = byId<HTMLElement>('message');
const screen = byId<HTMLElement>('screen');
const facts = byId<HTMLElement>('facts');
const playButton = byId<HTMLButtonElement>('play');
const speedSelect = byId<HTMLSelectElement>('speed');
const activity = byId<HTMLCanvasElement>('activity');
const seekInput = byId<HTMLInputElement>('seek');
const timeLabel = byId<HTMLElement>('time');
const statusLabel = byId<HTMLElement>('status');

let loaded: Loaded | undefined;
let playback: Playback | undefined;
let loading = false;
/** The store being filled while a file loads. */
let loadingStore: MessageStore | undefined;
/** Bumped by each load, so that a load replaced by a newer one stops. */
let loadGeneration = 0;
let terminalView: ReturnType<typeof createTerminalView> | undefined;
let vncView: ReturnType<typeof createVncView> | undefined;
let updateQueued = false;

const mib = (bytes: number): string =>
  bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const count = (n: number): string => n.toLocaleString('en');

/** `m:ss.s`, or `h:mm:ss.s` past an hour. */
function clock(ms: number): string {
  const tenths = Math.max(0, Math.floor(ms / 100));
  const total = Math.floor(tenths / 10);
  const s = `${String(total % 60).padStart(2, '0')}.${tenths % 10}`;
  const m = Math.floor(total / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function showMessage(text: string, kind: 'error' | 'warning' = 'error'): void {
  messageBox.textContent = text;
  messageBox.dataset.kind = kind;
  messageBox.hidden = text === '';
}

/** The kind the select asks for, or the one found in the bytes. */
function kind(): Kind | undefined {
  if (!loaded) return undefined;
  return kindSelect.value === 'vnc' || kindSelect.value === 'text' ? kindSelect.value : loaded.detected;
}

/** VNC when the server's first bytes are an RFB version greeting (`RFB 003.008\n`). */
function detect(store: MessageStore): Kind {
  for (let i = 0; i < store.count; i++) {
    if (!store.toClient(i)) continue;
    const head = String.fromCharCode(...store.data(i).subarray(0, 8));
    return /^RFB \d{3}\./.test(head) ? 'vnc' : 'text';
  }
  return 'text';
}

/** Fills the session panel from the file's `VNC_frame_session` and `VNC_frame_end`. */
function showFacts(recording: Loaded): void {
  const rows: Array<[string, string]> = [['file', recording.name]];
  const json = (name: string): Record<string, unknown> | undefined => {
    const text = recording.variables.get(name);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      rows.push([name, `(not JSON) ${text}`]);
      return undefined;
    }
  };
  const session = json('VNC_frame_session');
  const end = json('VNC_frame_end');
  if (session) {
    rows.push(['session', `#${session.id}`], ['client', String(session.client)]);
    if (session.peer !== session.client) rows.push(['via proxy', String(session.peer)]);
    if (session.token !== undefined) rows.push(['token', String(session.token)]);
    rows.push(['target', String(session.target)], ['path', String(session.path)], ['protocol', String(session.protocol)]);
    rows.push(['started', String(session.start)]);
  } else {
    rows.push(['session', 'not in the file (a Python websockify recording, or an older one)']);
  }
  if (end) {
    rows.push(['ended', String(end.end)], ['closed by', `${end.initiator}, code ${end.code}${end.reason ? ` (${end.reason})` : ''}`]);
    rows.push(['duration', clock(Number(end.durationMs))]);
    const stopped = end.stopped as { ms: number; maxBytes: number } | undefined;
    if (stopped) rows.push(['recording', `stopped at ${clock(stopped.ms)}: its limit of ${count(stopped.maxBytes)} bytes was reached`]);
  } else if (session) {
    rows.push(['ended', 'not recorded (the session was still open, or its recording stopped)']);
  }
  rows.push(['kept in memory', mib(recording.store.memoryBytes)]);
  facts.replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.fact = name;
      return [dt, dd];
    }),
  );
}

/** The activity strip: bytes per slice of time, server to client above the middle, client to server below. */
function drawActivity(store: MessageStore): void {
  const width = Math.max(200, Math.round(activity.clientWidth * devicePixelRatio) || 800);
  activity.width = width;
  const height = activity.height;
  const context = activity.getContext('2d');
  if (!context) return;
  const toClient = new Float64Array(width);
  const fromClient = new Float64Array(width);
  const scale = (width - 1) / Math.max(1, store.duration);
  for (let i = 0; i < store.count; i++) {
    const x = Math.floor(store.time(i) * scale);
    if (store.toClient(i)) toClient[x]! += store.size(i);
    else fromClient[x]! += store.size(i);
  }
  const peak = Math.log1p(Math.max(1, ...toClient, ...fromClient));
  const middle = height / 2;
  context.clearRect(0, 0, width, height);
  context.fillStyle = '#6ab0f3';
  for (let x = 0; x < width; x++)
    if (toClient[x]! > 0) context.fillRect(x, middle, 1, -Math.max(1, (Math.log1p(toClient[x]!) / peak) * (middle - 1)));
  context.fillStyle = '#f0a050';
  for (let x = 0; x < width; x++)
    if (fromClient[x]! > 0) context.fillRect(x, middle, 1, Math.max(1, (Math.log1p(fromClient[x]!) / peak) * (middle - 1)));
}

/** Redraws the controls from the playback's state, at most once a frame. */
function update(): void {
  if (updateQueued) return;
  updateQueued = true;
  requestAnimationFrame(() => {
    updateQueued = false;
    const store = loaded?.store;
    const state = playback?.state;
    playButton.disabled = !playback || (store?.count ?? 0) === 0;
    playButton.textContent = state?.playing ? 'Pause' : 'Play';
    seekInput.disabled = !playback;
    seekInput.max = String(store?.duration ?? 0);
    if (state && document.activeElement !== seekInput) seekInput.value = String(state.seeking?.target ?? state.position);
    timeLabel.textContent = `${clock(state?.position ?? 0)} / ${clock(store?.duration ?? 0)}`;
    byId('to-played').textContent = state ? `${count(state.toClient.messages)} · ${mib(state.toClient.bytes)}` : '';
    byId('from-played').textContent = state ? `${count(state.fromClient.messages)} · ${mib(state.fromClient.bytes)}` : '';
    byId('to-total').textContent = store ? `${count(store.messagesToClient)} · ${mib(store.bytesToClient)}` : '';
    byId('from-total').textContent = store ? `${count(store.count - store.messagesToClient)} · ${mib(store.bytesFromClient)}` : '';
    if (!loading) {
      statusLabel.textContent = state?.seeking
        ? `seeking to ${clock(state.seeking.target)}: ${Math.round(state.seeking.progress * 100)}%`
        : state?.playing
          ? 'playing'
          : state && state.next >= (store?.count ?? 0) && store?.count
            ? 'at the end'
            : 'paused';
    }
  });
}

/** A fresh view of the chosen kind, replacing the last one. */
function makeView() {
  terminalView = undefined;
  vncView = undefined;
  screen.replaceChildren();
  screen.dataset.empty = 'false';
  if (kind() === 'vnc') {
    vncView = createVncView(screen, (reason) => showMessage(`Cannot draw this recording as VNC: ${reason}. Try “Show as: terminal”.`));
    return vncView;
  }
  const first = loaded?.sizes.values().next().value as WindowSize | undefined;
  terminalView = createTerminalView(screen, first ?? DEFAULT_SIZE);
  return terminalView;
}

/** Starts a playback of the loaded recording (again, after the kind changed). */
function startPlayback(): void {
  playback?.dispose();
  playback = undefined;
  if (!loaded || loaded.store.count === 0) return;
  const sizes = loaded.sizes;
  playback = new Playback(
    loaded.store,
    makeView,
    (index) => {
      const size = sizes.get(index);
      if (size && terminalView) terminalView.resize(size);
    },
    update,
  );
  playback.speed = speed();
  update();
}

function speed(): number {
  return speedSelect.value === 'max' ? Number.POSITIVE_INFINITY : Number(speedSelect.value);
}

/** Reads a recording from a stream, parsing each chunk as it comes and giving the page its turns. */
async function load(name: string, open: () => Promise<{ stream: ReadableStream<Uint8Array>; size: number | undefined }>): Promise<void> {
  const generation = ++loadGeneration;
  playback?.dispose();
  playback = undefined;
  loaded = undefined;
  loading = true;
  showMessage('');
  sourceLabel.textContent = name;
  screen.replaceChildren();
  facts.replaceChildren();
  const store = new MessageStore();
  loadingStore = store;
  const sizes = new Map<number, WindowSize>();
  const parser = new RecordingParser(store, (_ms, data) => {
    const size = windowSizeIn(data);
    if (size) sizes.set(store.count - 1, size);
  });
  let error: Error | undefined;
  let read = 0;
  try {
    const { stream, size } = await open();
    const reader = stream.getReader();
    let slice = performance.now();
    for (;;) {
      const { done, value } = await reader.read();
      if (generation !== loadGeneration) {
        await reader.cancel();
        return;
      }
      if (done) break;
      try {
        parser.push(value);
      } catch (err) {
        await reader.cancel();
        throw err;
      }
      read += value.length;
      if (performance.now() - slice > PARSE_SLICE_MS) {
        statusLabel.textContent = `loading: ${mib(read)}${size ? ` of ${mib(size)}` : ''}, ${count(store.count)} messages`;
        await new Promise((resolve) => setTimeout(resolve, 0));
        slice = performance.now();
      }
    }
    parser.finish();
  } catch (err) {
    error = err instanceof Error ? err : new Error(String(err));
  }
  if (generation !== loadGeneration) return;
  loading = false;
  loadingStore = undefined;
  loaded = { name, store, variables: parser.variables, sizes, detected: detect(store), error };
  statusLabel.textContent = `${count(store.count)} messages, ${mib(read)} read`;
  if (error instanceof RecordingError) {
    const playable = store.count > 0 ? ` The ${count(store.count)} messages before it (up to ${clock(store.duration)}) can be played.` : '';
    showMessage(
      error.incomplete
        ? `This recording is incomplete: ${error.message}.${playable}`
        : `This file is not a valid session recording: ${error.message}.${playable}`,
      error.incomplete && store.count > 0 ? 'warning' : 'error',
    );
  } else if (error) {
    showMessage(`Cannot read ${name}: ${error.message}`);
  } else if (store.count === 0) {
    showMessage('This recording holds no messages (the target could not be reached, or nothing was sent).', 'warning');
  }
  kindSelect.title = `found in the bytes: ${loaded.detected === 'vnc' ? 'VNC' : 'text'}`;
  showFacts(loaded);
  drawActivity(store);
  startPlayback();
}

async function openUrl(url: string): Promise<void> {
  await load(url, async () => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    if (!response.body) throw new Error('the response has no body');
    const length = Number(response.headers.get('content-length'));
    return { stream: response.body, size: length > 0 ? length : undefined };
  });
}

function openFile(file: File): Promise<void> {
  return load(file.name, async () => ({ stream: file.stream(), size: file.size }));
}

playButton.addEventListener('click', () => {
  if (!playback) return;
  if (playback.state.playing) playback.pause();
  else playback.play();
});
speedSelect.addEventListener('change', () => {
  if (playback) playback.speed = speed();
});
kindSelect.addEventListener('change', () => {
  showMessage(loaded?.error ? (messageBox.textContent ?? '') : '');
  startPlayback();
});
seekInput.addEventListener('change', () => void playback?.seek(Number(seekInput.value)));
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) void openFile(file);
});
// Dropping a file anywhere on the page opens it.
document.addEventListener('dragover', (event) => {
  event.preventDefault();
  screen.dataset.drop = 'true';
});
document.addEventListener('dragleave', () => delete screen.dataset.drop);
document.addEventListener('drop', (event) => {
  event.preventDefault();
  delete screen.dataset.drop;
  const file = event.dataTransfer?.files[0];
  if (file) void openFile(file);
});
addEventListener('resize', () => loaded && drawActivity(loaded.store));

const page: PlayerPage = {
  open: openUrl,
  play: () => playback?.play(),
  pause: () => playback?.pause(),
  seek: async (ms) => playback?.seek(ms),
  setSpeed: (value) => {
    speedSelect.value = value === Number.POSITIVE_INFINITY ? 'max' : String(value);
    if (playback) playback.speed = value;
  },
  state: () => ({
    loading,
    kind: kind(),
    count: (loaded?.store ?? loadingStore)?.count ?? 0,
    duration: loaded?.store.duration ?? 0,
    position: playback?.state.position ?? 0,
    next: playback?.state.next ?? 0,
    playing: playback?.state.playing ?? false,
    seeking: playback?.state.seeking !== undefined,
    message: messageBox.hidden ? '' : (messageBox.textContent ?? ''),
    memoryBytes: loaded?.store.memoryBytes ?? 0,
  }),
  settled: async () => playback?.settled(),
  pixels: (points) => {
    const context = screen.querySelector('canvas')?.getContext('2d');
    if (!context) return [];
    return points.map(([x, y]) => {
      const [r, g, b] = context.getImageData(x, y, 1, 1).data;
      return [r!, g!, b!];
    });
  },
  canvasSize: () => {
    const canvas = screen.querySelector('canvas');
    return canvas ? [canvas.width, canvas.height] : [0, 0];
  },
  text: () => {
    const buffer = terminalView?.term.buffer.active;
    if (!buffer) return '';
    let text = '';
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (line) text += (line.isWrapped ? '' : '\n') + line.translateToString(true);
    }
    return text;
  },
};
(window as unknown as { player: PlayerPage }).player = page;

const params = new URLSearchParams(location.search);
if (params.get('kind') === 'vnc' || params.get('kind') === 'text') kindSelect.value = params.get('kind')!;
if (params.has('speed')) page.setSpeed(params.get('speed') === 'max' ? Number.POSITIVE_INFINITY : Number(params.get('speed')));
const fileParam = params.get('file');
if (fileParam !== null) {
  void openUrl(fileParam).then(() => {
    if (/^(1|true|yes|on)$/i.test(params.get('autoplay') ?? '')) page.play();
  });
}
update();
