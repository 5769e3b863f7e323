import { parseArgs } from 'node:util';
import { catchUpJobs } from '../catch-up-jobs.ts';
import { type CatchUpLog, startCatchUp } from '../db/catch-up.ts';
import type { Db } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { CliError, type CliOutput, consoleOutput, runCli, withDatabase } from './cli-runtime.ts';

const USAGE = 'Usage: npm run migrate [-- --catch-up]';

/**
 * `npm run migrate`: what the server does at start, on its own, for deployments that migrate before rolling out.
 * The catch-up of old rows (an adopted database's answers, the usage rollups) is the server's, after it listens,
 * so a migration step in a deployment stays short; this says what is left. `--catch-up` does it here instead, to
 * the end (Ctrl-C stops it after the batch in progress; the next run or start resumes).
 */
export async function migrateCommand(db: Db, out: CliOutput = consoleOutput, opts: { catchUp?: boolean } = {}): Promise<string[]> {
  const applied = await migrateToLatest(db);
  if (applied.length === 0) out.info('The database is up to date; no migration to run.');
  else for (const name of applied) out.info(`Applied migration ${name}`);
  const jobs = catchUpJobs();
  if (opts.catchUp) {
    const run = startCatchUp(db, jobs, cliLog(out));
    const stop = () => void run.stop();
    process.once('SIGINT', stop).once('SIGTERM', stop);
    await run.finished;
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
  for (const job of jobs) {
    const percent = await job.percent(db);
    if (percent === null) continue;
    out.info(
      opts.catchUp
        ? `Still to do: ${job.name} (${percent} % done); the server resumes it after it starts.`
        : `To catch up: ${job.name} (${percent} % done). The server does this in the background after it starts (pages are safe meanwhile); \`npm run migrate -- --catch-up\` does it now.`,
    );
  }
  return applied;
}

function cliLog(out: CliOutput): CatchUpLog {
  return {
    info: (_fields, message) => out.info(message),
    error: (fields, message) => console.error(message, (fields as { err?: unknown }).err ?? ''),
  };
}

export function parseMigrateArgs(argv: string[]): { catchUp: boolean } {
  try {
    const { values } = parseArgs({ args: argv, options: { 'catch-up': { type: 'boolean' } }, strict: true, allowPositionals: false });
    return { catchUp: values['catch-up'] ?? false };
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
}

if (import.meta.main) {
  await runCli(async () => {
    const opts = parseMigrateArgs(process.argv.slice(2));
    await withDatabase(
      async ({ db, kind }) => {
        consoleOutput.info(`Migrating the ${kind === 'postgres' ? 'PostgreSQL' : 'embedded (PGlite)'} database…`);
        await migrateCommand(db, consoleOutput, opts);
      },
      { migrate: false },
    );
  });
}
