import { readFileSync, type Stats, statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/**
 * PGlite is a single-process database with no guard of its own: two processes opening one data directory (two
 * servers, a server and a CLI command) corrupt it. So every process that opens DATA_DIR's embedded database first
 * takes an exclusive OS lock on the file DATA_DIR/pglite.lock and keeps it until it closes the database or dies
 * (docs/decisions/012). The kernel decides who gets it, atomically, and drops it the moment its owner's process
 * ends — a crash, kill -9 or a zombie included — so there is no pid to trust, no staleness to guess and no
 * crash window to wait out: a lock file copied, restored or left behind is only a file, taken at once.
 *
 * Node has no flock/fcntl of its own; its built-in SQLite takes POSIX fcntl locks (LockFileEx on Windows) on the
 * file it opens, so the lock is an SQLite write transaction left open on an empty file that is never written. One rule
 * follows from POSIX locks: the owning process must never open and close the lock file by other means (closing any
 * descriptor of a file drops all of the process's locks on it), hence nothing here reads it while holding it.
 */

export const LOCK_FILE_NAME = 'pglite.lock';

/** How often the owner checks that its lock file is still the one it locked (see DataDirLockLostError). */
export const LOCK_CHECK_INTERVAL_MS = 1_000;

const SQLITE_BUSY = 5;
const SQLITE_NOTADB = 26;

export class DataDirInUseError extends Error {
  readonly lockFile: string;
  /** The owner's pid where the system says (Linux's /proc/locks), else undefined. */
  readonly holder: number | undefined;
  constructor(lockFile: string, holder: number | undefined) {
    const who = holder ? `process ${holder}` : 'another process';
    super(`The embedded database in ${path.dirname(lockFile)} is in use: ${who} holds its lock ${lockFile}. Stop it first (or set DATABASE_URL).`);
    this.lockFile = lockFile;
    this.holder = holder;
  }
}

/**
 * The lock file was deleted or replaced while this process held it (an operator's rm, a DATA_DIR restored over the
 * running one): a new lock file has no owner, so another process may open the database any moment now.
 */
export class DataDirLockLostError extends Error {
  readonly lockFile: string;
  constructor(lockFile: string) {
    super(`The lock file ${lockFile} was deleted or replaced while this process held it: another process may open the same embedded database.`);
    this.lockFile = lockFile;
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Unlocks (idempotent). The file stays: deleting it would let a process that opened it before lock a file nobody else sees. */
  release(): void;
}

/** Who holds `file`'s lock, from Linux's table of file locks (pid 0 or no line: not visible here, say in another container). */
function holderOf(file: string): number | undefined {
  try {
    const { dev, ino } = statSync(file, { bigint: true });
    // /proc/locks names a file as MAJOR:MINOR:INODE, the device numbers in hex (glibc's split of dev_t).
    const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
    const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
    const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const [, , , type, pid, fileId] = line.split(/\s+/);
      if (fileId === id && type === 'WRITE' && Number(pid) > 0) return Number(pid); // READ: a contender's passing look
    }
  } catch {
    // Not Linux, or the file went away meanwhile: the message does without the pid.
  }
  return undefined;
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined; // gone (or unreadable): not the file that was locked
  }
}

/** Locks `file` or returns null if another process holds it. */
function tryLock(file: string): DatabaseSync | null {
  for (let attempt = 0; ; attempt++) {
    const db = new DatabaseSync(file, { timeout: 0 }); // timeout 0: answer at once, never wait for the holder
    try {
      // BEGIN IMMEDIATE takes SQLite's RESERVED lock: an fcntl write lock on one byte, which the kernel grants to one
      // process at a time and which the open transaction keeps. (BEGIN EXCLUSIVE would also wait for every reader's
      // shared lock to go: contenders briefly hold those, so with no wait all of them could fail; measured 1 round in
      // 60 with no owner.) The journal in memory: no pglite.lock-journal file beside it; nothing is written anyway.
      db.exec('PRAGMA journal_mode = MEMORY; BEGIN IMMEDIATE');
      return db;
    } catch (err) {
      db.close();
      const code = (err as { errcode?: number }).errcode;
      if (code === SQLITE_BUSY) return null;
      // The pid-only lock of earlier versions: a few digits, never locked by anyone. Emptied, it is taken like any other.
      if (code === SQLITE_NOTADB && attempt === 0) truncateSync(file);
      else throw err;
    }
  }
}

/** tryLock on the file the path names both before and after: the one every other process opens too. */
function lockSameFile(file: string): { db: DatabaseSync; locked: Stats } {
  for (;;) {
    const before = statOrUndefined(file);
    const db = tryLock(file);
    if (!db) throw new DataDirInUseError(file, holderOf(file));
    const locked = statSync(file);
    if (before && sameFile(before, locked)) return { db, locked };
    db.close(); // created just now, or replaced meanwhile: once more, on the file that is there now
  }
}

/**
 * Takes DATA_DIR's lock for this process, or throws DataDirInUseError naming the lock file (and its owner's pid
 * where the system tells). While held, `onLost` is called once if the lock file is deleted or replaced: the caller
 * must then stop writing the database at once (the server and the CLI commands exit).
 */
export function lockDataDir(dir: string, onLost: (err: DataDirLockLostError) => void = stopAtOnce): DataDirLock {
  const file = path.resolve(dir, LOCK_FILE_NAME);
  const { db, locked } = lockSameFile(file);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(watch);
    db.close();
  };
  // A stat a second: the only way this lock can stop protecting the database is its file changing under it.
  const watch = setInterval(() => {
    const now = statOrUndefined(file);
    if (now && sameFile(now, locked)) return;
    release();
    onLost(new DataDirLockLostError(file));
  }, LOCK_CHECK_INTERVAL_MS).unref();
  return { file, release };
}

/**
 * What every Parley process does when its lock is lost: stop writing at once, like a crash (the next start recovers
 * from the WAL). A graceful stop would write (interrupted answers, a checkpoint) to a database another process may
 * have open; carrying on would be two writers for good. `print` is where the one line goes (the server's log).
 */
export function stopAtOnce(err: DataDirLockLostError, print: (line: string) => void = console.error): never {
  print(`${err.message} Stopping now, without another write.`);
  process.exit(1);
}
