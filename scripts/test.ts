import { spawnSync } from 'node:child_process';
import { existsSync, globSync } from 'node:fs';
import path from 'node:path';
import { decideBrowser } from '../test/browser/chromium.ts';
import { buildPgliteTemplate } from '../test/database.ts';

/**
 * `npm test`: every test file on the embedded database, then (with TEST_DATABASE_URL) again on PostgreSQL.
 * `npm test -- <path>…` runs exactly the test files under those paths (a file, or a directory's test files);
 * a path with none is an error, not a silent "0 tests". Arguments starting with `-` go to `node --test`
 * (`npm test -- src/chat --test-name-pattern=regenerate`).
 */
const root = path.resolve(import.meta.dirname, '..');
const TEST_FILE_GLOBS = ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/**/*.test.ts'];
/** Browser journeys are the files that need Chromium; everything else runs anywhere. */
const isBrowserJourney = (file: string) => file.startsWith('test/browser/') && file.endsWith('-journey.test.ts');

export class SelectionError extends Error {}

/**
 * The test files (relative to the repository, with `/`) that `args` name. A path is taken relative to `cwd`
 * (npm runs scripts at the package root but says where it was called from in INIT_CWD).
 */
export function selectTestFiles(all: readonly string[], args: readonly string[], cwd: string = root): string[] {
  if (args.length === 0) return [...all].sort();
  const selected = new Set<string>();
  for (const arg of args) {
    const relative = path.relative(root, path.resolve(cwd, arg)).split(path.sep).join('/');
    if (relative.startsWith('..') || path.isAbsolute(relative)) throw new SelectionError(`${arg}: outside the project (${root})`);
    const matches = all.filter((f) => relative === '' || f === relative || f.startsWith(`${relative}/`));
    if (matches.length === 0) {
      // What the old substring match would have picked, else files sharing the last part of the name.
      const containing = all.filter((f) => f.includes(relative));
      const near = (containing.length > 0 ? containing : all.filter((f) => f.includes(path.basename(relative)))).slice(0, 5);
      const why = existsSync(path.join(root, relative)) ? `no test files (${TEST_FILE_GLOBS.join(', ')}) there` : 'no such file or directory';
      throw new SelectionError(`${arg}: ${why}${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''}`);
    }
    for (const f of matches) selected.add(f);
  }
  return [...selected].sort();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const nodeOptions = args.filter((a) => a.startsWith('-'));
  const paths = args.filter((a) => !a.startsWith('-'));
  const all = globSync(TEST_FILE_GLOBS, { cwd: root }).map((f) => f.split(path.sep).join('/'));
  let files: string[];
  try {
    files = selectTestFiles(all, paths, process.env.INIT_CWD ?? process.cwd());
  } catch (err) {
    if (!(err instanceof SelectionError)) throw err;
    console.error(`npm test: ${err.message}`);
    process.exit(1);
  }

  const browser = files.some(isBrowserJourney) ? decideBrowser() : undefined;
  if (browser && !browser.run && browser.required) {
    // CI: fail at once rather than after the whole suite.
    console.error(`npm test: ${browser.message}`);
    process.exit(1);
  }

  await buildPgliteTemplate();
  const runs: Array<{ name: string; env: NodeJS.ProcessEnv }> = [{ name: 'embedded PGlite', env: { TEST_DB: 'pglite' } }];
  if (process.env.TEST_DATABASE_URL) runs.push({ name: `PostgreSQL (${new URL(process.env.TEST_DATABASE_URL).host})`, env: { TEST_DB: 'postgres' } });

  let failed = false;
  for (const run of runs) {
    console.log(`\n# ${files.length} test files on ${run.name}`);
    const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=dot', ...nodeOptions, ...files], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, ...run.env },
    });
    if (result.status !== 0) failed = true;
  }
  // Once, at the end where it is seen; the journeys themselves skip (see test/browser/chromium.ts).
  if (browser && !browser.run) console.log(`\n# ${browser.message}`);
  process.exit(failed ? 1 : 0);
}

if (import.meta.main) await main();
