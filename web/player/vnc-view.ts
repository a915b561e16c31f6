// VNC recordings drawn by noVNC's own client (RFB), reading the recorded server bytes from a channel of
// ours instead of a WebSocket; what it sends back is dropped, as the recorded server already answered.
import RFB, { type RfbChannel } from '@novnc/novnc';
import type { ReplayView } from './view.js';

/**
 * The most unread bytes let wait in noVNC's receive queue before playback holds back: its queue stops
 * growing at 40 MiB and fails the session past that.
 */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** The parts of RFB's internals read to know whether it is still working (noVNC 1.7's names). */
interface RfbInternals {
  _flushing?: boolean;
  _sock?: { rQlen?: number; _rQlen?: number; _rQi?: number };
}

/** A channel already open, which hands RFB the bytes it is fed and ignores what RFB sends. */
class ReplayChannel implements RfbChannel {
  binaryType = 'arraybuffer';
  // An RTCDataChannel's state names, which RFB also takes: open from the start, so RFB begins at once.
  readyState = 'open';
  protocol = '';
  onopen: RfbChannel['onopen'] = null;
  onmessage: RfbChannel['onmessage'] = null;
  onclose: RfbChannel['onclose'] = null;
  onerror: RfbChannel['onerror'] = null;

  send(): void {
    // The recorded server has had its answers; the replayed client's requests go nowhere.
  }

  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.onclose?.({ code: 1000, reason: '', wasClean: true });
  }

  deliver(data: Uint8Array): void {
    // RFB copies what it is given into its queue, so a view of the store is enough.
    this.onmessage?.({ data });
  }
}

/** A view drawing with noVNC into `container`; `failed` is told when RFB gives up (with its reason). */
export function createVncView(container: HTMLElement, failed: (reason: string) => void): ReplayView & { rfb: RFB } {
  const channel = new ReplayChannel();
  const rfb = new RFB(container, channel, { shared: true });
  rfb.viewOnly = true;
  rfb.scaleViewport = true;
  rfb.focusOnClick = false;
  rfb.background = '#202124';
  // Recorded authentication is replayed with any answer: the recorded server's verdict follows anyway.
  rfb.addEventListener('credentialsrequired', () => rfb.sendCredentials({ username: '', password: '', target: '' }));
  let disposed = false;
  rfb.addEventListener('securityfailure', (event) =>
    failed(`the recorded server refused the authentication (${(event as CustomEvent).detail.reason ?? 'no reason given'})`),
  );
  rfb.addEventListener('disconnect', (event) => {
    if (!disposed && !(event as CustomEvent).detail.clean)
      failed('noVNC could not follow the recorded session (is it a VNC session recorded from noVNC?)');
  });
  const internals = rfb as unknown as RfbInternals;
  const queued = (): number => {
    const sock = internals._sock;
    return sock ? (sock._rQlen ?? 0) - (sock._rQi ?? 0) : 0;
  };
  return {
    rfb,
    feed: (data) => channel.deliver(data),
    busy: () => internals._flushing === true || queued() > MAX_QUEUED_BYTES,
    settled: async () => {
      // Decoding (JPEG tiles) finishes asynchronously; then a frame is drawn.
      while (internals._flushing === true) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => requestAnimationFrame(resolve));
    },
    dispose: () => {
      disposed = true;
      rfb.disconnect();
      container.replaceChildren();
    },
  };
}
