import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { totpSecretBox } from '../auth/totp-queries.ts';
import { type Config, loadConfig } from '../config.ts';
import { DataDirInUseError, lockDataDir } from '../db/data-dir-lock.ts';
import { type Db, embeddedOptions, openDatabase } from '../db/database.ts';
import { createApiKeyBox } from '../llm/llm-queries.ts';
import { CliError, type CliOutput, consoleOutput, runCli } from './cli-runtime.ts';

/**
 * `npm run backup -- <file>`: the embedded database of DATA_DIR as one file (PGlite's own data-directory tarball).
 * It refuses while Parley runs on DATA_DIR rather than copy files a running server writes to: PGlite lives inside
 * the server's process, so only that process could take a consistent copy, and a stop of a few seconds is the
 * price of not adding an endpoint for it (README "Backups"). On PostgreSQL, pg_dump does the job while it runs.
 */

const USAGE = 'Usage: npm run backup -- <file> [--force]   (the embedded database in DATA_DIR; stop Parley first; --force replaces <file>)';

export interface CopyArgs {
  file: string;
  force: boolean;
}

/**
 * `<file> [--force]`, shared with restore; `null` means --help was asked for. A relative file is taken from where
 * `npm run` was typed (npm runs scripts at the package root and says where it was called from in INIT_CWD).
 */
export function parseCopyArgs(argv: string[], usage: string = USAGE, cwd: string = process.env.INIT_CWD ?? process.cwd()): CopyArgs | null {
  let parsed: { values: { force?: boolean; help?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${usage}`);
  }
  if (parsed.values.help) return null;
  const [file, ...extra] = parsed.positionals;
  if (!file?.trim()) throw new CliError(`the backup file is required\n${usage}`);
  if (extra.length > 0) throw new CliError(`one file only (got also ${extra.join(' ')})\n${usage}`);
  return { file: path.resolve(cwd, file), force: parsed.values.force ?? false };
}

/** Where openDatabase keeps the embedded cluster inside DATA_DIR. */
export const embeddedDir = (dataDir: string) => path.join(dataDir, 'pglite');
export const holdsDatabase = (dir: string) => existsSync(path.join(dir, 'PG_VERSION'));

export function refuseOnPostgres(config: Config, command: 'backup' | 'restore'): void {
  if (!config.DATABASE_URL) return;
  const tool = command === 'backup' ? 'pg_dump -Fc -f <file> "$DATABASE_URL"' : 'pg_restore into a new database';
  throw new CliError(
    `DATABASE_URL is set, so Parley's data is in that PostgreSQL server; npm run ${command} only handles the embedded database. Use ${tool} (see "Backups" in the README).`,
  );
}

/** Takes DATA_DIR's lock, or says plainly who holds it and that Parley must be stopped first. Returns the release function. */
export function lockForCopy(dataDir: string, why: string): () => void {
  try {
    return lockDataDir(dataDir).release;
  } catch (err) {
    if (!(err instanceof DataDirInUseError)) throw err;
    const who = err.holder ? `process ${err.holder}` : 'another process';
    throw new CliError(`Parley is running on this DATA_DIR: ${who} holds ${err.lockFile}. Stop Parley first — ${why} (see "Backups" in the README).`);
  }
}

/** Rows per table of chatbot_schema: what a copy must have the same of. */
export async function countRowsPerTable(db: Db): Promise<Map<string, number>> {
  const tables = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'chatbot_schema' AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(db);
  const counts = new Map<string, number>();
  for (const { name } of tables.rows) {
    const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(`chatbot_schema.${name}`)}`.execute(db);
    counts.set(name, r.rows[0]?.n ?? 0);
  }
  return counts;
}

export function describeCounts(counts: Map<string, number>): string {
  const rows = [...counts.values()].reduce((a, b) => a + b, 0);
  return `${counts.size} tables, ${rows} rows: ${counts.get('app_user') ?? 0} accounts, ${counts.get('chat') ?? 0} chats, ${counts.get('message') ?? 0} messages`;
}

/**
 * The values sealed with keys derived from APP_SECRET (src/crypto/secret-box.ts): model API keys and TOTP secrets.
 * Passwords, recovery codes and session tokens are hashes that need no key; so only these tell whether an APP_SECRET fits.
 */
export async function checkSealedSecrets(db: Db, appSecret: string): Promise<{ checked: number; unreadable: number }> {
  const keys = await db.selectFrom('chatbot_schema.llm').select('txapi_key_enc as sealed').where('txapi_key_enc', 'is not', null).execute();
  const totp = await db.selectFrom('chatbot_schema.app_user').select('totp_secret as sealed').where('totp_secret', 'like', 'v1.%').execute();
  const opens = (box: { decrypt(s: string): string }, sealed: string | null) => {
    try {
      box.decrypt(sealed ?? '');
      return true;
    } catch {
      return false;
    }
  };
  const results = [...keys.map((k) => opens(createApiKeyBox(appSecret), k.sealed)), ...totp.map((t) => opens(totpSecretBox(appSecret), t.sealed))];
  return { checked: results.length, unreadable: results.filter((ok) => !ok).length };
}

/** Where this process's APP_SECRET came from, in words for the operator (loadConfig reads the variable, else DATA_DIR's file). */
export function secretSource(env: NodeJS.ProcessEnv, dataDir: string): string {
  return env.APP_SECRET ? 'the APP_SECRET environment variable' : `the generated file ${path.join(dataDir, 'app-secret')}`;
}

/** Loads a backup into an in-memory PGlite and counts its rows: a file that does not open is not a backup. */
export async function openBackupInMemory<T>(bytes: Buffer<ArrayBuffer>, work: (db: Db) => Promise<T>): Promise<T> {
  // gunzipSync: a damaged file throws here; PGlite's own gunzip stream would fail outside any promise and end the process.
  const lite = new PGlite({ ...embeddedOptions(), loadDataDir: new File([gunzipSync(bytes)], 'backup.tar', { type: 'application/x-tar' }) });
  try {
    const opened = await openDatabase({ pglite: lite });
    try {
      return await work(opened.db);
    } finally {
      await opened.close();
    }
  } finally {
    await lite.close();
  }
}

/** Writes `bytes` to a temporary file beside `target` (mode 0600: the backup holds password hashes and chats), fsynced. */
function writeTemp(target: string, bytes: Buffer): string {
  const tmp = `${target}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

export async function backupCommand(config: Config, args: CopyArgs, env: NodeJS.ProcessEnv, out: CliOutput = consoleOutput): Promise<void> {
  refuseOnPostgres(config, 'backup');
  const source = embeddedDir(config.DATA_DIR);
  if (!holdsDatabase(source)) throw new CliError(`There is no embedded database in ${source} to back up (is DATA_DIR right?).`);
  if (!existsSync(path.dirname(args.file))) throw new CliError(`The folder ${path.dirname(args.file)} does not exist.`);
  if (existsSync(args.file) && !args.force) throw new CliError(`${args.file} already exists; pass --force to replace it.`);

  const unlock = lockForCopy(config.DATA_DIR, 'a copy of files the running server writes to would not be consistent');
  let tmp: string | undefined;
  try {
    const lite = new PGlite(source, embeddedOptions());
    let counts: Map<string, number>;
    let sealed: { checked: number; unreadable: number };
    let dump: Blob;
    try {
      // Everything committed goes from the WAL into the data files first, so the copy needs no recovery to open.
      await lite.exec('CHECKPOINT');
      const opened = await openDatabase({ pglite: lite });
      try {
        counts = await countRowsPerTable(opened.db);
        sealed = await checkSealedSecrets(opened.db, config.APP_SECRET);
      } finally {
        await opened.close();
      }
      dump = await lite.dumpDataDir('gzip');
    } finally {
      await lite.close();
    }
    const bytes = Buffer.from(await dump.arrayBuffer());
    tmp = writeTemp(args.file, bytes);

    // The file as written must open and hold the same rows, or it is not put in place.
    const copied = await openBackupInMemory(readFileSync(tmp), (db) => countRowsPerTable(db));
    const differs = [...counts].filter(([table, n]) => copied.get(table) !== n).map(([table]) => table);
    if (differs.length > 0 || copied.size !== counts.size) throw new Error(`the backup does not match the database (tables ${differs.join(', ') || '(set)'})`);

    if (args.force) renameSync(tmp, args.file);
    else {
      try {
        linkSync(tmp, args.file); // unlike rename, fails if the name was taken meanwhile: never replaces without --force
        rmSync(tmp);
      } catch (err) {
        const taken = (err as NodeJS.ErrnoException).code === 'EEXIST' || existsSync(args.file);
        if (taken) throw new CliError(`${args.file} already exists; pass --force to replace it.`);
        renameSync(tmp, args.file); // a file system without hard links (EPERM, ENOTSUP): checked just before, as close as it gets
      }
    }
    tmp = undefined;
    const megabytes = (statSync(args.file).size / 1e6).toFixed(1);
    out.info(
      `Backed up the embedded database in ${source} to ${args.file} (${megabytes} MB; ${describeCounts(counts)}). It opened again with the same number of rows in every table.`,
    );
    out.info(
      `APP_SECRET is NOT in the backup. This process used ${secretSource(env, config.DATA_DIR)}: keep a copy of it, apart from the backup. ` +
        'Without the same APP_SECRET, the model API keys and 2FA (TOTP) secrets in the backup cannot be decrypted after a restore.',
    );
    if (sealed.unreadable > 0) {
      out.info(
        `Warning: ${sealed.unreadable} of the ${sealed.checked} sealed values in this database do not open with that APP_SECRET, so the server must run with another one: keep THAT one with care.`,
      );
    }
  } finally {
    if (tmp) rmSync(tmp, { force: true });
    unlock();
  }
}

if (import.meta.main) {
  await runCli(async () => {
    const args = parseCopyArgs(process.argv.slice(2));
    if (!args) return consoleOutput.info(USAGE);
    await backupCommand(loadConfig(process.env), args, process.env);
  });
}
