import type { Target } from '../target/target.js';

/**
 * A source of targets by token (`--token-plugin`). Built-in plugins and users' own modules implement
 * this one interface.
 */
export interface TokenPlugin {
  /**
   * The target for `token`, or undefined when the source does not know it (the client gets 404).
   * @throws TokenSourceError when the source cannot be asked (the client gets 503).
   */
  lookup(token: string): Promise<Target | undefined>;
  /** Releases connections and watchers when the proxy stops. */
  close?(): Promise<void> | void;
}

/** The token source is unreachable or answered nonsense: the client gets 503, the proxy carries on. */
export class TokenSourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenSourceError';
  }
}
