import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { buildPgliteTemplate } from '../test/database.ts';

/**
 * `npm test`: every test file on the embedded database, then (with TEST_DATABASE_URL) again on PostgreSQL.
 * Arguments narrow the files: `npm test -- test/auth`.
 */
const filters = process.argv.slice(2);
const files = globSync(['src/**/*.test.ts', 'test/**/*.test.ts', 'web/**/*.test.ts'])
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

await buildPgliteTemplate();

const runs: Array<{ name: string; env: NodeJS.ProcessEnv }> = [{ name: 'embedded PGlite', env: { TEST_DB: 'pglite' } }];
if (process.env.TEST_DATABASE_URL) runs.push({ name: `PostgreSQL (${new URL(process.env.TEST_DATABASE_URL).host})`, env: { TEST_DB: 'postgres' } });

let failed = false;
for (const run of runs) {
  console.log(`\n# ${files.length} test files on ${run.name}`);
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=dot', ...files], {
    stdio: 'inherit',
    env: { ...process.env, ...run.env },
  });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
