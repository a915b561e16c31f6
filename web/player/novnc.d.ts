// The part of noVNC's RFB class (core/rfb.js, plain JavaScript) that the player uses.
declare module '@novnc/novnc' {
  /** A WebSocket-like object RFB reads from instead of opening its own connection. */
  export interface RfbChannel {
    binaryType: string;
    readyState: string;
    protocol: string;
    onopen: ((event: Event) => void) | null;
    onmessage: ((event: { data: ArrayBuffer | Uint8Array }) => void) | null;
    onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null;
    onerror: ((event: Event) => void) | null;
    send(data: Uint8Array | ArrayBuffer): void;
    close(): void;
  }

  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | RfbChannel, options?: Record<string, unknown>);
    viewOnly: boolean;
    scaleViewport: boolean;
    focusOnClick: boolean;
    background: string;
    sendCredentials(credentials: { username?: string; password?: string; target?: string }): void;
    disconnect(): void;
  }
}
