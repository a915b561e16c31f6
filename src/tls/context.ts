import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { StartupError, systemErrorText } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { readKeyPasswordFile } from './key-password.js';

/** The lowest protocol version accepted (`--ssl-version`), named as in Python websockify. */
export type TlsMinVersion = 'default' | 'tlsv1_1' | 'tlsv1_2' | 'tlsv1_3';

/** The server side's TLS settings, mirroring Python websockify's options. */
export interface TlsServerOptions {
  /** Certificate file (`--cert`, default `self.pem`); may also hold the private key. */
  cert: string;
  /** Private key file when it is not in the certificate file (`--key`). */
  key?: string | undefined;
  /** Password of an encrypted private key (`--key-password`). */
  keyPassword?: string | undefined;
  /**
   * A file holding the password of an encrypted private key (`--key-password-file`), read once when the
   * store opens (before the proxy gives up root with `--user`); reloads use the password read then.
   */
  keyPasswordFile?: string | undefined;
  /** OpenSSL cipher list for TLS 1.2 and below (`--ssl-ciphers`). */
  ciphers?: string | undefined;
  /** Lowest version accepted (`--ssl-version`); 'default' keeps Node's (TLS 1.2). */
  minVersion?: TlsMinVersion | undefined;
  /** Clients must present a certificate signed by `cafile`'s authorities (`--verify-client`). */
  verifyClient?: boolean | undefined;
  /**
   * Authorities trusted for client certificates (`--cafile`); without it Node's default trust store
   * (its bundled roots, or the system's when node runs with `--use-openssl-ca`).
   */
  cafile?: string | undefined;
}

/** Tuning of {@link TlsContextStore.open}. */
export interface TlsStoreOptions {
  /** Reload when the files change on disk. Default true. */
  watch?: boolean;
  /** Wait this long after the last change before reloading, so a multi-step update is read once. Default 200. */
  debounceMs?: number;
  /** Told of each reload's outcome (the metrics, when on). */
  reloaded?: ((result: TlsReloadResult) => void) | undefined;
}

/** How a reload ended: a new context, the same files again, or unusable files (the previous context stays). */
export type TlsReloadResult = 'ok' | 'unchanged' | 'failed';

/** The defaults of the TLS options, as in Python websockify. */
export const TLS_DEFAULTS = { cert: 'self.pem', minVersion: 'default' } as const satisfies Partial<TlsServerOptions>;

const MIN_VERSIONS: Record<TlsMinVersion, tls.SecureVersion | undefined> = {
  default: undefined,
  tlsv1_1: 'TLSv1.1',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
};

/** OpenSSL's terse reasons for a bad configuration, in words that name the option to fix. */
const HINTS: Array<[RegExp, string]> = [
  [/bad decrypt|bad password|interrupted or cancelled/i, 'wrong or missing key password (--key-password or --key-password-file)'],
  [/key values mismatch/i, 'the private key does not belong to the certificate'],
  [/no cipher match/i, 'no usable cipher in --ssl-ciphers'],
];

/** Reads a file the configuration names; the error says which option and file. */
function readNamed(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new StartupError(`cannot read TLS ${what} ${file}: ${systemErrorText(err)}`);
  }
}

/**
 * TLS 1.3 suites in the server's order of preference: AES-128-GCM first, as browsers ask for it and Go's
 * TLS prefers it (cheaper than AES-256-GCM per byte, same security margin for this use); OpenSSL's own
 * default puts AES-256-GCM first, which a client offering it first (Node, Python) would otherwise get.
 */
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/**
 * The cipher string for the context: `--ssl-ciphers` (or Node's default list) for TLS 1.2 and below,
 * after {@link TLS13_SUITES}; Node tells TLS 1.3 suites apart by their `TLS_` prefix. A list that names
 * TLS 1.3 suites itself is used as given.
 */
export function cipherList(ciphers: string | undefined): string {
  if (ciphers !== undefined && /(^|:)TLS_/.test(ciphers)) return ciphers;
  const older = (ciphers ?? tls.DEFAULT_CIPHERS).split(':').filter((name) => !name.startsWith('TLS_'));
  return [TLS13_SUITES, ...older].join(':');
}

/** Reads the files and builds (and so validates) the secure context options; throws StartupError. */
function build(options: TlsServerOptions): tls.SecureContextOptions {
  const cert = readNamed(options.cert, 'certificate file');
  if (!cert.includes('-----BEGIN CERTIFICATE-----'))
    throw new StartupError(`TLS certificate file ${options.cert}: no PEM certificate in it`);
  const keyFile = options.key ?? options.cert;
  const key = options.key ? readNamed(options.key, 'key file') : cert;
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw new StartupError(`TLS key file ${keyFile}: no PEM private key in it${options.key ? '' : ' (give the key file with --key)'}`);
  }
  const minVersion = MIN_VERSIONS[options.minVersion ?? 'default'];
  const built: tls.SecureContextOptions = {
    cert,
    key,
    ...(options.keyPassword !== undefined ? { passphrase: options.keyPassword } : {}),
    ciphers: cipherList(options.ciphers),
    // The server's order, as Python websockify (its default context prefers the server's ciphers).
    honorCipherOrder: true,
    ...(minVersion ? { minVersion } : {}),
    ...(options.verifyClient && options.cafile ? { ca: readNamed(options.cafile, 'CA file') } : {}),
  };
  try {
    tls.createSecureContext(built);
  } catch (err) {
    const message = (err as Error).message;
    const hint = HINTS.find(([pattern]) => pattern.test(message))?.[1];
    throw new StartupError(`invalid TLS configuration (certificate ${options.cert}, key ${keyFile}): ${hint ?? message}`);
  }
  return built;
}

/** The target of a symbolic link, or undefined when `file` is not one. */
function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** Whether two sets of context options were built from the same bytes. */
function sameInputs(a: tls.SecureContextOptions, b: tls.SecureContextOptions): boolean {
  const eq = (x: unknown, y: unknown): boolean => (Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y);
  return eq(a.cert, b.cert) && eq(a.key, b.key) && eq(a.ca, b.ca);
}

/**
 * The server's TLS settings, read from disk and kept current: when the certificate, key or CA file
 * changes (the directories are watched, so an atomic rename over the file is seen too) or on
 * {@link reload}, the files are read again. New connections then get the new context; open ones keep
 * theirs. A broken new file is logged and the previous context stays in use.
 */
export class TlsContextStore {
  private current: tls.SecureContextOptions;
  private version = 1;
  private readonly watchers: fs.FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;

  private constructor(
    /** The settings the files are read with. */
    readonly options: TlsServerOptions,
    private readonly logger: Logger,
    private readonly reloaded: ((result: TlsReloadResult) => void) | undefined,
  ) {
    this.current = build(options);
  }

  /**
   * Reads the files and starts watching them.
   * @throws StartupError naming the file or option at fault.
   */
  static open(options: TlsServerOptions, logger: Logger, storeOptions: TlsStoreOptions = {}): TlsContextStore {
    const withPassword =
      options.keyPasswordFile === undefined ? options : { ...options, keyPassword: readKeyPasswordFile(options.keyPasswordFile) };
    const store = new TlsContextStore(withPassword, logger, storeOptions.reloaded);
    if (storeOptions.watch ?? true) store.watch(storeOptions.debounceMs ?? 200);
    return store;
  }

  /** The options of the context new connections get (for `tls.Server#setSecureContext`). */
  get secureContextOptions(): tls.SecureContextOptions {
    return this.current;
  }

  /** Grows by one each time a reload changes the context, so users can tell theirs is stale. */
  get generation(): number {
    return this.version;
  }

  /**
   * Reads the files again (on SIGHUP, or when they change). Unchanged files change nothing.
   * @returns false when the new files are unusable (logged; the previous context stays).
   */
  reload(why = 'reload requested'): boolean {
    let next: tls.SecureContextOptions;
    try {
      next = build(this.options);
    } catch (err) {
      const denied = /permission denied/.test((err as Error).message) && process.geteuid?.() !== 0;
      // After --user the files are read as that user, who may lack the right to.
      const reason = `${(err as Error).message}${denied ? ` (this process runs as uid ${process.geteuid?.()} since it gave up root: --user/--group must be able to read it)` : ''}`;
      this.logger.warn(
        { event: 'tls-reload-failed', reason, cause: why },
        `TLS certificate not reloaded (${why}): ${reason}; keeping the previous one`,
      );
      this.reloaded?.('failed');
      return false;
    }
    if (sameInputs(next, this.current)) {
      this.logger.debug({ event: 'tls-unchanged', cause: why }, `TLS files unchanged (${why})`);
      this.reloaded?.('unchanged');
      return true;
    }
    this.current = next;
    this.version++;
    this.logger.info(
      { event: 'tls-reloaded', cert: this.options.cert, cause: why },
      `TLS certificate reloaded from ${this.options.cert} (${why}); new connections use it`,
    );
    this.reloaded?.('ok');
    return true;
  }

  /** Stops watching the files. */
  close(): void {
    clearTimeout(this.debounce);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private watch(debounceMs: number): void {
    const files = [this.options.cert, this.options.key, this.options.verifyClient ? this.options.cafile : undefined].filter(
      (f): f is string => !!f,
    );
    const byDir = new Map<string, Set<string>>();
    for (const file of files) {
      const abs = path.resolve(file);
      const names = byDir.get(path.dirname(abs)) ?? new Set<string>();
      names.add(path.basename(abs));
      // A link into a sibling entry (Kubernetes: cert.pem -> ..data/cert.pem) changes when that entry is renamed over.
      const link = readLink(abs);
      if (link !== undefined && !path.isAbsolute(link)) names.add(link.split(/[\\/]/)[0]!);
      byDir.set(path.dirname(abs), names);
    }
    for (const [dir, names] of byDir) {
      // The directory, not the file: a rename over the file replaces the inode a file watch would follow.
      const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (name !== null && !names.has(name.toString())) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reload(`${name ?? 'a file'} changed on disk`), debounceMs);
        this.debounce.unref();
      });
      watcher.on('error', (err) =>
        this.logger.warn(
          { event: 'tls-watch-failed', dir, reason: err.message },
          `no longer watching ${dir} for TLS file changes: ${err.message}`,
        ),
      );
      this.watchers.push(watcher);
    }
  }
}
