/**
 * The part of the `send` package's API that the web server uses (the package ships no types; this
 * avoids a second dependency on `@types/send`).
 */
declare module 'send' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { Stream } from 'node:stream';

  namespace send {
    /** Options of {@link send}; only those the web server sets. */
    interface SendOptions {
      /** Directory the (URL-encoded) path is resolved against; `..` above it is refused with 403. */
      root?: string;
      /** Index file names for paths ending in `/`; false for none. */
      index?: string[] | string | false;
      /** How names starting with a dot are treated. */
      dotfiles?: 'allow' | 'deny' | 'ignore';
      /** Answer `Range` requests (206/416). */
      acceptRanges?: boolean;
      /** Send `Cache-Control: public, max-age=0`. */
      cacheControl?: boolean;
      /** Send a weak `ETag` and answer `If-None-Match`. */
      etag?: boolean;
      /** Send `Last-Modified` and answer `If-Modified-Since`. */
      lastModified?: boolean;
    }

    /** An error `send` would otherwise answer itself: its status and the headers it wants sent. */
    interface SendError extends Error {
      status?: number;
      statusCode?: number;
      headers?: Record<string, string>;
    }

    /** One file transfer in progress. */
    interface SendStream extends Stream {
      pipe<T extends ServerResponse>(res: T): T;
      on(event: 'error', listener: (err: SendError) => void): this;
      on(event: 'directory', listener: (res: ServerResponse, path: string) => void): this;
      on(event: string, listener: (...args: unknown[]) => void): this;
    }
  }

  /** Starts sending the file at the URL-encoded `path` as the answer to `req`. */
  function send(req: IncomingMessage, path: string, options?: send.SendOptions): send.SendStream;
  export = send;
}
