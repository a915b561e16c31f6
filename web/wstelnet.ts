// The wstelnet page: an xterm.js terminal speaking telnet to a TCP service through the proxy.
// Bundled by scripts/build-web.mjs into dist/web/wstelnet.js; the telnet protocol itself is in telnet.ts.
import { Terminal } from '@xterm/xterm';
import { TelnetClient } from './telnet.js';
import Websock from './websock.js';

/** What the page exposes as `window.wstelnet`, for scripts and the browser tests. */
export interface WsTelnetPage {
  term: Terminal;
  /** Connects with the form's values (what the Connect button does). */
  connect(): void;
  /** Closes the connection (what the Disconnect button does). */
  disconnect(): void;
}

/** The scrollbar's width in pixels: reserved so the last column is not hidden under it. */
const SCROLLBAR_WIDTH = 14;

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`wstelnet.html lacks #${id}`);
  return element as T;
};

const hostInput = byId<HTMLInputElement>('host');
const portInput = byId<HTMLInputElement>('port');
const pathInput = byId<HTMLInputElement>('path');
const encryptInput = byId<HTMLInputElement>('encrypt');
const connectButton = byId<HTMLButtonElement>('connect');
const form = byId<HTMLFormElement>('connection');
const statusLine = byId<HTMLElement>('status');
const terminalBox = byId<HTMLElement>('terminal');

// Defaults come from the page's own location (the proxy serving the page is the one to talk to), and
// the URL's parameters override them.
const params = new URLSearchParams(location.search);
const secure = location.protocol === 'https:';
hostInput.value = params.get('host') ?? (location.hostname || 'localhost');
portInput.value = params.get('port') ?? (location.port || (secure ? '443' : '80'));
pathInput.value = params.get('path') ?? 'websockify';
encryptInput.checked = params.has('encrypt') ? /^(1|true|yes|on)$/i.test(params.get('encrypt')!) : secure;
const token = params.get('token');

const term = new Terminal({
  cursorBlink: true,
  fontFamily: 'DejaVu Sans Mono, Menlo, Consolas, monospace',
  fontSize: 15,
  scrollback: 5000,
});
term.open(terminalBox);

let socket: Websock | undefined;
let telnet: TelnetClient | undefined;

function setStatus(text: string, state: 'idle' | 'connecting' | 'connected' | 'failed'): void {
  statusLine.textContent = text;
  statusLine.dataset.state = state;
}

/** The WebSocket URL for the form's values, with the token (websockify's token plugins read `?token=`). */
function targetUrl(): string {
  let host = hostInput.value.trim();
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  const path = pathInput.value.trim().replace(/^\/+/, '');
  const query = token === null ? '' : `?token=${encodeURIComponent(token)}`;
  return `${encryptInput.checked ? 'wss' : 'ws'}://${host}:${portInput.value.trim()}/${path}${query}`;
}

function fit(): void {
  // xterm lays the screen out in whole cells, so its size divided by rows and columns is one cell.
  const screen = terminalBox.querySelector<HTMLElement>('.xterm-screen');
  if (screen === null) return;
  const cellWidth = screen.offsetWidth / term.cols;
  const cellHeight = screen.offsetHeight / term.rows;
  if (!(cellWidth > 0 && cellHeight > 0)) return;
  const style = getComputedStyle(terminalBox);
  const width = terminalBox.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - SCROLLBAR_WIDTH;
  const height = terminalBox.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const cols = Math.max(2, Math.floor(width / cellWidth));
  const rows = Math.max(1, Math.floor(height / cellHeight));
  if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
}

function disconnect(): void {
  socket?.close();
}

function connect(): void {
  if (socket !== undefined) return;
  const url = targetUrl();
  const ws = new Websock();
  const session = new TelnetClient({
    send: (bytes) => {
      ws.sQpushBytes(bytes);
      ws.flush();
    },
    display: (text) => term.write(text),
    windowSize: () => ({ cols: term.cols, rows: term.rows }),
  });
  socket = ws;
  ws.on('open', () => {
    telnet = session;
    setStatus(`Connected to ${url}`, 'connected');
    connectButton.textContent = 'Disconnect';
    term.focus();
  });
  ws.on('message', () => session.receive(ws.rQshiftBytes(ws.rQlen(), false)));
  ws.on('error', () => undefined); // the close event that follows tells the user
  ws.on('close', (event) => {
    const opened = telnet === session;
    socket = undefined;
    telnet = undefined;
    connectButton.textContent = 'Connect';
    const detail = event.code === undefined ? '' : ` (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`;
    setStatus(opened ? `Disconnected${detail}` : `Could not connect to ${url}${detail}`, opened ? 'idle' : 'failed');
    if (opened) term.write('\r\n\x1b[2m[connection closed]\x1b[0m\r\n');
  });
  setStatus(`Connecting to ${url}`, 'connecting');
  connectButton.textContent = 'Disconnect';
  try {
    ws.open(url);
  } catch (error) {
    // A malformed URL (bad port, say) throws at once instead of closing.
    socket = undefined;
    connectButton.textContent = 'Connect';
    setStatus(`Cannot connect: ${error instanceof Error ? error.message : String(error)}`, 'failed');
  }
}

term.onData((data) => telnet?.type(data));
term.onResize(() => telnet?.resized());
form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (socket === undefined) connect();
  else disconnect();
});
new ResizeObserver(fit).observe(terminalBox);
fit();
setStatus('Disconnected', 'idle');

const page: WsTelnetPage = { term, connect, disconnect };
(window as unknown as { wstelnet: WsTelnetPage }).wstelnet = page;

if (/^(1|true|yes|on)$/i.test(params.get('autoconnect') ?? '')) connect();
