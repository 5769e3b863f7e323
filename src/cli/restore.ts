import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { type Config, loadConfig } from '../config.ts';
import { embeddedOptions, openDatabase } from '../db/database.ts';
import {
  type CopyArgs,
  checkSealedSecrets,
  countRowsPerTable,
  describeCounts,
  embeddedDir,
  holdsDatabase,
  lockForCopy,
  parseCopyArgs,
  refuseOnPostgres,
  secretSource,
} from './backup.ts';
import { CliError, type CliOutput, consoleOutput, runCli } from './cli-runtime.ts';

/**
 * `npm run restore -- <file>`: a file from `npm run backup` becomes DATA_DIR's embedded database. The backup is
 * unpacked beside it and opened first; only then are the directories swapped (two renames in one folder), so a
 * bad file or a crash half-way leaves the database that was there as it was. With --force an existing database
 * is moved aside, never deleted.
 */

const USAGE = 'Usage: npm run restore -- <file> [--force]   (into DATA_DIR; stop Parley first; --force moves an existing database aside)';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** A name for the moved-aside database that sorts by time and never collides with an earlier one. */
const asideName = (target: string) => `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function restoreCommand(config: Config, args: CopyArgs, env: NodeJS.ProcessEnv, out: CliOutput = consoleOutput): Promise<void> {
  refuseOnPostgres(config, 'restore');
  if (!existsSync(args.file)) throw new CliError(`${args.file} does not exist.`);
  const bytes = readFileSync(args.file);
  if (!bytes.subarray(0, 2).equals(GZIP_MAGIC)) throw new CliError(`${args.file} is not a backup made by npm run backup (not a .tar.gz file).`);
  let tarball: Buffer<ArrayBuffer>;
  try {
    // Unpacked here, not by PGlite: a cut file makes its gunzip stream fail outside any promise, ending the process.
    tarball = gunzipSync(bytes);
  } catch (err) {
    throw new CliError(`${args.file} is damaged (${(err as Error).message}); nothing was changed.`);
  }

  mkdirSync(config.DATA_DIR, { recursive: true });
  const unlock = lockForCopy(config.DATA_DIR, 'the server has the database open and would go on writing the old one');
  const target = embeddedDir(config.DATA_DIR);
  const staging = `${target}.restoring-${process.pid}`;
  try {
    // Decided under the lock: nobody can create or open the database between this check and the swap.
    const occupied = existsSync(target) && readdirSync(target).length > 0;
    if (occupied && !args.force) {
      const what = holdsDatabase(target) ? 'already holds a database' : 'is not empty';
      throw new CliError(`${target} ${what}. Pass --force to restore over it: it is then moved aside (renamed), not deleted.`);
    }

    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { mode: 0o700 }); // PGlite's files inside are 0666: see openDatabase
    let counts: Map<string, number>;
    let sealed: { checked: number; unreadable: number };
    let lite: PGlite | undefined;
    try {
      lite = new PGlite(staging, { ...embeddedOptions(), loadDataDir: new File([tarball], 'backup.tar', { type: 'application/x-tar' }) });
      const opened = await openDatabase({ pglite: lite });
      try {
        counts = await countRowsPerTable(opened.db);
        sealed = await checkSealedSecrets(opened.db, config.APP_SECRET);
      } finally {
        await opened.close();
      }
    } catch (err) {
      throw new CliError(`${args.file} could not be opened as a database (${(err as Error).message}); nothing was changed.`);
    } finally {
      await lite?.close();
    }
    if (counts.size === 0) throw new CliError(`${args.file} holds a database without Parley's tables; nothing was changed.`);

    let aside: string | undefined;
    if (existsSync(target)) {
      aside = occupied ? asideName(target) : undefined;
      if (aside) renameSync(target, aside);
      else rmSync(target, { recursive: true }); // an empty folder: nothing to keep
    }
    renameSync(staging, target);
    fsyncDir(config.DATA_DIR);

    out.info(`Restored ${args.file} into ${target} (${describeCounts(counts)}).`);
    if (aside) out.info(`The database that was there is kept in ${aside}; delete it once the restored one is right.`);
    out.info('Start Parley as usual; it applies any newer migrations at start.');
    if (sealed.unreadable > 0) {
      out.info(
        `Warning: ${sealed.unreadable} of the ${sealed.checked} model API keys and 2FA secrets in the backup do not open with the APP_SECRET this process has ` +
          `(from ${secretSource(env, config.DATA_DIR)}). Run Parley with the APP_SECRET that was in use when the backup was made ` +
          '(or copy that app-secret file into DATA_DIR): until then, 2FA users can sign in only with a recovery code and those model connections fail.',
      );
    } else if (sealed.checked > 0) {
      out.info(`The ${sealed.checked} model API keys and 2FA secrets in it open with this APP_SECRET.`);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
    unlock();
  }
}

if (import.meta.main) {
  await runCli(async () => {
    const args = parseCopyArgs(process.argv.slice(2), USAGE);
    if (!args) return consoleOutput.info(USAGE);
    await restoreCommand(loadConfig(process.env), args, process.env);
  });
}
