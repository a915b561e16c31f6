import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createPki, type Issued, type Pki } from './pki.js';
import { ProxyPool, type RunningProxy } from './proxy.js';
import { startEchoServer, type TestServer } from './targets.js';

/**
 * What a test file of the real CLI shares between its tests (a file that needs only an echo target and a
 * scratch directory uses it too): made in a `before` hook, removed in an `after` hook. Read the fields
 * inside tests and hooks only (they throw before the set-up ran).
 */
export interface CliFixture {
  /** Throw-away authorities; tests issue more certificates from them. */
  readonly pki: Pki;
  /** A server certificate for 127.0.0.1 and localhost, signed by `pki.ca`. */
  readonly server: Issued;
  /** `pki.ca`'s certificate (PEM), for a client's `ca` option. */
  readonly ca: Buffer;
  /** An echo server on 127.0.0.1, the proxies' default target. */
  readonly echoTarget: TestServer;
  /** An empty directory of the file's own. */
  readonly scratch: string;
  /**
   * `--cert`/`--key` of {@link CliFixture.server} with `--verify-client --cafile` of `pki.ca`: TLS that
   * asks each client for a certificate from `pki.ca`.
   */
  readonly verifyClientArgs: readonly string[];
  /** A TLS client's options that trust `pki.ca` and present `issued` (its certificate and key, read now). */
  clientTls(issued: Issued): { ca: Buffer; cert: Buffer; key: Buffer };
  /**
   * Starts the CLI with `args`, listening on 127.0.0.1 (a free port) and proxying to 127.0.0.1:`targetPort`
   * (default: the echo target). Whatever a failing test leaves running is stopped after the file.
   */
  proxy(args: readonly string[], targetPort?: number): Promise<RunningProxy>;
  /** Stops a proxy started by {@link CliFixture.proxy} and waits for its exit. */
  stop(proxy: RunningProxy): Promise<void>;
}

interface Made {
  pki: Pki;
  server: Issued;
  ca: Buffer;
  echoTarget: TestServer;
  scratch: string;
}

/** A test file's own set-up and tear-down, run inside the fixture's (see {@link cliFixture}). */
export interface FileHooks {
  /** Runs once the fixture is made; it may use the fixture. */
  before?(): Promise<void> | void;
  /** Runs after the file's proxies stopped, before the fixture is removed. */
  after?(): Promise<void> | void;
}

/**
 * Registers the set-up and tear-down of a {@link CliFixture} on the calling file; call it at the top
 * level (or at the top of a describe block, for that block alone). `name` labels the scratch directory.
 * A file's own set-up that needs the fixture goes in `hooks`, not in hooks of its own: Node 20 starts
 * top-level `before` hooks without awaiting the ones registered earlier.
 */
export function cliFixture(name: string, hooks: FileHooks = {}): CliFixture {
  const pool = new ProxyPool();
  let made: Made | undefined;
  before(async () => {
    const pki = createPki();
    made = {
      pki,
      server: pki.issue('server', pki.ca),
      ca: fs.readFileSync(pki.ca.cert),
      echoTarget: await startEchoServer(),
      scratch: fs.mkdtempSync(path.join(os.tmpdir(), `wsfy-${name}-`)),
    };
    await hooks.before?.();
  });
  after(async () => {
    await pool.stopAll();
    if (!made) return;
    await hooks.after?.();
    await made.echoTarget.close();
    made.pki.remove();
    fs.rmSync(made.scratch, { recursive: true, force: true });
  });
  const ready = (): Made => {
    if (!made) throw new Error('the CLI fixture is made in a before hook: use it inside tests and hooks');
    return made;
  };
  return {
    get pki() {
      return ready().pki;
    },
    get server() {
      return ready().server;
    },
    get ca() {
      return ready().ca;
    },
    get echoTarget() {
      return ready().echoTarget;
    },
    get scratch() {
      return ready().scratch;
    },
    get verifyClientArgs() {
      const { server, pki } = ready();
      return ['--cert', server.cert, '--key', server.key, '--verify-client', '--cafile', pki.ca.cert];
    },
    clientTls: (issued) => ({ ca: ready().ca, cert: fs.readFileSync(issued.cert), key: fs.readFileSync(issued.key) }),
    proxy: (args, targetPort = ready().echoTarget.port) => pool.start([...args, '127.0.0.1:0', `127.0.0.1:${targetPort}`]),
    stop: (proxy) => pool.stop(proxy),
  };
}
