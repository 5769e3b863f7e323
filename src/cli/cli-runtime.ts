import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { DataDirInUseError } from '../db/data-dir-lock.ts';
import { type OpenedDatabase, openDatabase } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';

/** A mistake the operator can fix (unknown e-mail, bad flag): printed as one line, exit code 1, no stack. */
export class CliError extends Error {}

/** `--email <address>` (trimmed) of the commands that act on one account; `null` means --help was asked for. */
export function parseEmailArgs(argv: string[], usage: string): { email: string } | null {
  let values: { email?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { email: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${usage}`);
  }
  if (values.help) return null;
  if (!values.email?.trim()) throw new CliError(`--email is required\n${usage}`);
  return { email: values.email.trim() };
}

/** Where a command writes; tests pass their own to read what was printed. */
export interface CliOutput {
  info(line: string): void;
}

export const consoleOutput: CliOutput = { info: (line) => console.log(line) };

/**
 * Opens the database the server would use, from the same environment variables (DATABASE_URL, else PGlite in
 * DATA_DIR), runs `work` and closes it whatever happens. With the embedded database, stop the server first:
 * PGlite is a single-process database and two processes must not open one data directory.
 * `migrate: true` brings the schema up to date first, as the server does at start, so `user:create` works on
 * a database the server has never opened.
 */
export async function withDatabase<T>(work: (database: OpenedDatabase) => Promise<T>, opts: { migrate: boolean; env?: NodeJS.ProcessEnv }): Promise<T> {
  const config = loadConfig(opts.env ?? process.env);
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  try {
    if (opts.migrate) await migrateToLatest(database.db);
    return await work(database);
  } finally {
    await database.close();
  }
}

/**
 * Runs a command and exits: 0 on success, 1 for configuration and operator errors (one line, no stack),
 * 2 for anything unexpected (with its stack, since that is a bug worth reporting).
 */
export async function runCli(command: () => Promise<void>): Promise<never> {
  let code = 0;
  try {
    await command();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      code = 1;
    } else if (err instanceof CliError || err instanceof DataDirInUseError) {
      console.error(`Error: ${err.message}`);
      code = 1;
    } else {
      console.error(err);
      code = 2;
    }
  }
  process.exit(code);
}
