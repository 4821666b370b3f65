/**
 * @module data-dir
 * The data directory as a whole: owner-only permissions for everything in it (the app database's WAL
 * holds live secrets), and the lock that keeps a second process off it (two processes on one directory
 * each think they own its journals, and the second one's first write fails its shard).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export const PRIVATE_DIRECTORY_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** A data directory holds a few files per partition (at most 4096): a walk of it is bounded by that. */
const MAX_ENTRIES_TIGHTENED = 100_000;

/** `mkdir -p` whose new levels are owner-only; returns the first directory created, as mkdirSync does. */
export function makePrivateDirectory(dir: string): string | undefined {
  return fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
}

/**
 * Creates `file` empty and owner-only when it does not exist yet. Used before SQLite opens a database:
 * SQLite gives a new database the umask's mode (0644), and its -wal, -shm and -journal the mode of the
 * database file, so creating the database file first keeps all of them private.
 */
export function createPrivateFile(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
}

/**
 * Removes group and other permissions from the directory and everything under it (a directory made by
 * an older version was 0755 with 0644 files). Symbolic links are left alone, never followed; entries
 * owned by another user are left as they are.
 */
export function tightenPermissions(dir: string): void {
  const pending = [dir];
  for (let seen = 0; pending.length > 0 && seen < MAX_ENTRIES_TIGHTENED; seen++) {
    const current = pending.pop()!;
    const stat = fs.lstatSync(current);
    if (stat.isSymbolicLink()) continue;
    const wanted = stat.isDirectory() ? PRIVATE_DIRECTORY_MODE : PRIVATE_FILE_MODE;
    if ((stat.mode & 0o077) !== 0) chmodOwn(current, stat.mode & wanted);
    if (stat.isDirectory())
      for (const name of fs.readdirSync(current)) pending.push(path.join(current, name));
  }
}

/** An entry someone else owns (a volume's mount point, say) cannot be changed by us, and is theirs to set. */
function chmodOwn(file: string, mode: number): void {
  try {
    fs.chmodSync(file, mode);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EPERM') throw err;
  }
}

export interface DataDirLock {
  /** Lets another process take the directory (the OS does the same when this process dies). */
  release(): void;
}

export type LockResult = { ok: true; lock: DataDirLock } | { ok: false; holderPid: number | undefined };

/**
 * Takes the directory's lock: an exclusive SQLite transaction on `lock.db`, left open for the life of
 * the process. SQLite holds it as a POSIX record lock, which the kernel drops when the process dies (a
 * kill -9 never leaves a stale lock), and which SQLite also enforces between connections of one process.
 * The holder's pid is kept beside it in `lock.pid`, written after the lock is taken, only to name it.
 */
export function lockDataDir(dir: string): LockResult {
  const file = path.join(dir, 'lock.db');
  createPrivateFile(file);
  // timeout 0: a held lock is reported at once rather than waited for.
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    return { ok: false, holderPid: readHolderPid(dir) };
  }
  const pidFile = path.join(dir, 'lock.pid');
  fs.writeFileSync(`${pidFile}.tmp`, `${process.pid}\n`, { mode: PRIVATE_FILE_MODE });
  fs.renameSync(`${pidFile}.tmp`, pidFile);
  let isReleased = false;
  return {
    ok: true,
    lock: {
      release() {
        if (isReleased) return;
        isReleased = true;
        fs.rmSync(pidFile, { force: true });
        db.close();
      },
    },
  };
}

function readHolderPid(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dir, 'lock.pid'), 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
