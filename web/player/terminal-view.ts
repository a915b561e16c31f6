// Telnet and other text recordings drawn by xterm.js through the telnet client's machine (web/telnet.ts),
// which takes the negotiation out of the data just as it did in the live session.
import { Terminal } from '@xterm/xterm';
import { Cmd, Opt, TelnetClient, type WindowSize } from '../telnet.js';
import type { ReplayView } from './view.js';

/** Unwritten bytes let wait in xterm.js before playback holds back. */
const MAX_PENDING_BYTES = 1024 * 1024;

/**
 * The last window size a client message reports (telnet NAWS: IAC SB NAWS w w h h IAC SE), so that the
 * replay has the recorded terminal's size; undefined when it reports none.
 */
export function windowSizeIn(data: Uint8Array): WindowSize | undefined {
  let found: WindowSize | undefined;
  for (let i = 0; i + 8 < data.length; i++) {
    if (data[i] !== Cmd.IAC || data[i + 1] !== Cmd.SB || data[i + 2] !== Opt.NAWS) continue;
    // A size byte of 255 is sent doubled; such sizes are not worth the parsing here.
    if (data[i + 7] !== Cmd.IAC || data[i + 8] !== Cmd.SE) continue;
    const cols = (data[i + 3]! << 8) | data[i + 4]!;
    const rows = (data[i + 5]! << 8) | data[i + 6]!;
    if (cols > 0 && rows > 0) found = { cols, rows };
  }
  return found;
}

/** A terminal view in `container`, `size` cells large until a recorded resize says otherwise. */
export function createTerminalView(
  container: HTMLElement,
  size: WindowSize,
): ReplayView & { term: Terminal; resize(size: WindowSize): void } {
  const term = new Terminal({
    cols: size.cols,
    rows: size.rows,
    disableStdin: true,
    cursorBlink: false,
    fontFamily: 'DejaVu Sans Mono, Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
  });
  term.open(container);
  let pending = 0;
  const telnet = new TelnetClient({
    send: () => undefined, // the recorded server has had its answers
    display: (text) => {
      pending += text.length;
      term.write(text, () => {
        pending -= text.length;
      });
    },
    windowSize: () => ({ cols: term.cols, rows: term.rows }),
  });
  return {
    term,
    feed: (data) => telnet.receive(data),
    busy: () => pending > MAX_PENDING_BYTES,
    settled: () => new Promise((resolve) => term.write('', () => resolve())),
    resize: ({ cols, rows }) => term.resize(cols, rows),
    dispose: () => {
      term.dispose();
      container.replaceChildren();
    },
  };
}
