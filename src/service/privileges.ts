import { execFileSync } from 'node:child_process';
import { StartupError } from '../errors.js';

/** Who the proxy becomes once it has bound its port and read its key (`--user`, `--group`). */
export interface RunAs {
  /** A user name or number. */
  user: string;
  /** A group name or number; default the user's login group. */
  group?: string | undefined;
}

/** A user and group resolved to their numbers. */
export interface Identity {
  user: string;
  uid: number;
  group: string;
  gid: number;
}

/**
 * One entry of a system database (`passwd`, `group`) by name or number, through `getent`, so that
 * whatever the system's name service knows (files, LDAP, systemd's dynamic users) is found.
 * @returns its fields, or undefined when there is no such entry.
 */
function getent(database: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    return execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]!
      .split(':');
  } catch (err) {
    // Status 2: no such key. Anything else (getent missing) is a failure to report as such.
    if ((err as { status?: number }).status === 2) return undefined;
    throw new StartupError(`cannot look up ${database} entry '${key}': ${(err as Error).message}`);
  }
}

/**
 * The numbers of `runAs`'s user and group.
 * @throws StartupError for a user or group the system does not know.
 */
export function lookupIdentity(runAs: RunAs): Identity {
  const passwd = getent('passwd', runAs.user);
  if (!passwd) throw new StartupError(`--user: no such user '${runAs.user}'`);
  const [user, , uid, loginGid] = passwd;
  let group: string;
  let gid: number;
  if (runAs.group === undefined) {
    gid = Number(loginGid);
    group = getent('group', String(gid))?.[0] ?? String(gid);
  } else {
    const entry = getent('group', runAs.group);
    if (!entry) throw new StartupError(`--group: no such group '${runAs.group}'`);
    group = entry[0]!;
    gid = Number(entry[2]);
  }
  return { user: user!, uid: Number(uid), group, gid };
}

/** Whether this process already runs as `identity` (so there is nothing to give up). */
function isAlready(identity: Identity): boolean {
  return process.getuid?.() === identity.uid && process.getgid?.() === identity.gid;
}

/**
 * Checks that this process may become `identity`: it is root, or it is that user and group already
 * (a replacement worker of a process that gave up root).
 * @throws StartupError otherwise, before anything is opened.
 */
export function checkCanSwitch(identity: Identity): void {
  if (isAlready(identity) || process.geteuid?.() === 0) return;
  throw new StartupError(
    `--user ${identity.user}: changing user needs root, and this process runs as uid ${process.geteuid?.()} (drop --user, or start as root)`,
  );
}

/**
 * Gives up root for good: the supplementary groups are cleared, then the group set, then the user (in
 * that order: once the user is set, the groups can no longer be changed). Real, effective and saved
 * ids all change, so root cannot be taken back. Nothing happens when the process is `identity` already.
 * @throws StartupError when the system refuses a step.
 */
export function dropPrivileges(identity: Identity): void {
  if (isAlready(identity)) return;
  try {
    process.setgroups?.([]);
    process.setgid?.(identity.gid);
    process.setuid?.(identity.uid);
  } catch (err) {
    throw new StartupError(`cannot become user ${identity.user} and group ${identity.group}: ${(err as Error).message}`);
  }
}

/** How log lines name an identity. */
export function describeIdentity(identity: Identity): string {
  return `user ${identity.user} (uid ${identity.uid}), group ${identity.group} (gid ${identity.gid})`;
}
