import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Target } from '../targets/target.js';
import { type TokenPlugin, type TokenPluginContext, TokenSourceError } from './plugin.js';
import { parseTargetText } from './target-text.js';

/** One file as last read: what identified its version on disk, its text, and its tokens. */
interface FileState {
  signature: string;
  text: string;
  targets: Map<string, Target>;
}

/**
 * A file modified this recently may be modified again within the file system's timestamp granularity
 * without its signature changing, so it is read again (cheap: the text is compared before parsing).
 */
const RACY_NS = 2_000_000_000n;

/**
 * Parses a token file: lines `token: host:port`, blank lines and `#` comments skipped. Each malformed line
 * is logged with its file and line number and left out; the others still count.
 */
function parseTokenFile(text: string, file: string, logger: Logger): Map<string, Target> {
  const targets = new Map<string, Target>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // As Python websockify: the token ends at the first colon followed by white space.
    const parts = line.split(/:\s/);
    let reason: string | undefined;
    if (parts.length !== 2 || parts[0] === '') reason = "expected 'token: host:port'";
    else {
      try {
        targets.set(parts[0]!, parseTargetText(parts[1]!.trim()));
      } catch (err) {
        reason = (err as Error).message;
      }
    }
    if (reason !== undefined) {
      logger.warn(
        { event: 'token-file-error', file, line: index + 1, reason },
        `token file ${file} line ${index + 1}: ${reason}; line ignored`,
      );
    }
  });
  return targets;
}

/**
 * The tokens of a file or of every file in a directory (names starting with '.' or ending in '~', editors'
 * leftovers, are skipped). {@link refresh} re-reads only what changed on disk since the last call.
 */
class TokenFileStore {
  private files = new Map<string, FileState>();
  private merged = new Map<string, Target>();
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly source: string,
    private readonly logger: Logger,
  ) {}

  /** The current tokens; concurrent lookups share one refresh. */
  async targets(): Promise<Map<string, Target>> {
    this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
    await this.refreshing;
    return this.merged;
  }

  /** Brings the tokens up to date: stat each file, and read (then parse) only those whose version changed. */
  async refresh(): Promise<void> {
    const { paths, directory } = await this.list();
    const now = BigInt(Date.now()) * 1_000_000n;
    const next = new Map<string, FileState>();
    let changed = paths.length !== this.files.size;
    for (const file of paths) {
      let stat: BigIntStats;
      try {
        stat = await fs.stat(file, { bigint: true });
      } catch (err) {
        // Removed between the listing and now: as if it had not been listed.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && directory) continue;
        throw sourceError(file, err);
      }
      if (!stat.isFile()) continue;
      const signature = `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
      const known = this.files.get(file);
      if (known && known.signature === signature && now - stat.mtimeNs > RACY_NS) {
        next.set(file, known);
        continue;
      }
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        throw sourceError(file, err);
      }
      if (known && known.text === text) {
        next.set(file, { ...known, signature });
        continue;
      }
      next.set(file, { signature, text, targets: parseTokenFile(text, file, this.logger) });
      changed = true;
      this.logger.debug({ event: 'token-file-read', file }, `read token file ${file}`);
    }
    changed ||= [...this.files.keys()].some((file) => !next.has(file));
    this.files = next;
    if (!changed) return;
    const merged = new Map<string, Target>();
    for (const state of next.values()) for (const [token, target] of state.targets) merged.set(token, target);
    this.merged = merged;
  }

  /** The files to read: the source itself, or the directory's entries in name order (later ones win). */
  private async list(): Promise<{ paths: string[]; directory: boolean }> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return { paths: [this.source], directory: false };
      throw sourceError(this.source, err);
    }
    const paths = entries
      .filter((name) => !name.startsWith('.') && !name.endsWith('~'))
      .sort()
      .map((name) => path.join(this.source, name));
    return { paths, directory: true };
  }
}

function sourceError(file: string, err: unknown): TokenSourceError {
  return new TokenSourceError(`cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
    cause: err,
  });
}

/**
 * `TokenFile` (`live` true: edits on disk apply to the next connection) and `ReadOnlyTokenFile` (read once
 * at start-up). The source is a file of `token: host:port` lines, or a directory of such files.
 * @throws StartupError when the source cannot be read at start-up.
 */
export async function createTokenFile(source: string | undefined, context: TokenPluginContext, live: boolean): Promise<TokenPlugin> {
  const name = live ? 'TokenFile' : 'ReadOnlyTokenFile';
  if (!source) throw new StartupError(`${name} needs --token-source FILE (a token file, or a directory of them)`);
  // Absolute now: a daemon changes its directory after start-up.
  const store = new TokenFileStore(path.resolve(source), context.logger);
  let targets: Map<string, Target>;
  try {
    targets = await store.targets();
  } catch (err) {
    throw new StartupError(`${name}: ${(err as Error).message}`);
  }
  if (!live) return { lookup: async (token) => targets.get(token) };
  return { lookup: async (token) => (await store.targets()).get(token) };
}
