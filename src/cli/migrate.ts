import type { Db } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { type CliOutput, consoleOutput, runCli, withDatabase } from './cli-runtime.ts';

/** `npm run migrate`: what the server does at start, on its own, for deployments that migrate before rolling out. */
export async function migrateCommand(db: Db, out: CliOutput = consoleOutput): Promise<string[]> {
  const applied = await migrateToLatest(db);
  if (applied.length === 0) out.info('The database is up to date; no migration to run.');
  else for (const name of applied) out.info(`Applied migration ${name}`);
  return applied;
}

if (import.meta.main) {
  await runCli(() =>
    withDatabase(
      async ({ db, kind }) => {
        consoleOutput.info(`Migrating the ${kind === 'postgres' ? 'PostgreSQL' : 'embedded (PGlite)'} database…`);
        await migrateCommand(db);
      },
      { migrate: false },
    ),
  );
}
