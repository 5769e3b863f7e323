import { spawnSync } from 'node:child_process';
import { existsSync, globSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decideBrowser } from '../test/browser/chromium.ts';
import { ensurePgliteTemplate } from '../test/database.ts';
import type { Failure, RunSummary } from '../test/summary-reporter.ts';
import { guessMs, importedModules, isBrowserJourney, ownProcessReasons, planProcesses, writeEntries } from './test-processes.ts';
import { readTimes, recordTimes } from './test-times.ts';

/**
 * `npm test`: every test file on the embedded database, then (with TEST_DATABASE_URL) again on PostgreSQL.
 * `npm test -- <path>…` runs exactly the test files under those paths (a file, or a directory's test files);
 * a path with none is an error, not a silent "0 tests". Arguments starting with `-` go to `node --test`
 * (`npm test -- src/chat --test-name-pattern=regenerate`).
 * Each run ends with its slowest files and a line `N passed, N failed, N skipped`, the whole with a total and the
 * tests that failed (test/summary-reporter.ts collects them from node:test's events; `dot` shows progress).
 * Files share Node processes where they can, and the processes start longest first (scripts/test-processes.ts, from
 * the times of the last run in .cache/test-times.json).
 * PARLEY_TEST_ROOT: look for the test files in another folder (the runner's own tests run fixture suites so);
 * PARLEY_TEST_TIMES: keep the files' times in another file than .cache/test-times.json.
 */
const root = path.resolve(process.env.PARLEY_TEST_ROOT ?? path.resolve(import.meta.dirname, '..'));
const summaryReporter = path.resolve(import.meta.dirname, '../test/summary-reporter.ts');
const cacheDir = path.resolve(import.meta.dirname, '../.cache');
/** How many of the slowest files each run names, for whoever wants the suite faster. */
const SLOWEST_SHOWN = 8;
const TEST_FILE_GLOBS = ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/**/*.test.ts'];
/**
 * About how much work (in the last run's file times) one shared process takes: a process costs ~3 CPU s to start,
 * so fewer is cheaper; smaller pieces let the two workers end closer together (the last to start are the shortest).
 */
const SHARED_PROCESS_MS = 60_000;
/**
 * Whether a test file's outcome can depend on which database the run uses: it reads TEST_DB, TEST_DATABASE_URL or
 * testDbKind, or imports (through its relative imports, at any depth) a module that does — test/database.ts, and so
 * test/app.ts and every route test. A file that cannot reach them (pure functions, views, parsers, the browser
 * module, the Chromium finder) proves the same thing on both runs, so it runs once.
 */
export function readsDatabaseKind(file: string, dir: string = root): boolean {
  for (const [, module] of importedModules(file, dir)) if (module.readsDatabaseKind) return true;
  return false;
}

/**
 * A file that says `// test-runs-once: <why>` runs on the embedded database alone even though it reaches the database:
 * for the input fuzzers and the soak, whose subject is the HTTP boundary or one process's memory, and whose queries
 * are the same PostgreSQL engine on both runs (and checked on both by the route tests). The reason stays in the file.
 */
export function runsOnce(file: string, dir: string = root): boolean {
  try {
    return /^\/\/ test-runs-once: \S/m.test(readFileSync(path.resolve(dir, file), 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Which files each database run takes. Everything runs on the embedded database; with PostgreSQL too, only what can
 * differ there runs again (readsDatabaseKind: queries, routes, races, migrations). The browser journeys go to the
 * PostgreSQL run alone (they drive pages whose queries the route tests check on both databases, and they are the
 * suite's slowest files).
 */
export function planRuns(
  files: readonly string[],
  withPostgres: boolean,
  dependsOnDatabase: (file: string) => boolean = (f) => !runsOnce(f) && readsDatabaseKind(f),
): { pglite: string[]; postgres: string[] } {
  if (!withPostgres) return { pglite: [...files], postgres: [] };
  return {
    pglite: files.filter((f) => !isBrowserJourney(f)),
    postgres: files.filter((f) => isBrowserJourney(f) || dependsOnDatabase(f)),
  };
}

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
  const all = globSync(TEST_FILE_GLOBS, { cwd: root, exclude: ['test/fixtures/**'] }).map((f) => f.split(path.sep).join('/'));
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

  await ensurePgliteTemplate();
  const plan = planRuns(files, Boolean(process.env.TEST_DATABASE_URL));
  const alone = await ownProcessReasons(files, root);
  const timesFile = process.env.PARLEY_TEST_TIMES ?? path.join(cacheDir, 'test-times.json');
  // Two processes at a time on 2 cores (PARLEY_TEST_CONCURRENCY overrides). Three on the PostgreSQL run was measured:
  // 10 min 34 s against 9 min 36 s at two, so no gain (docs/decisions/018).
  const concurrency = Number(process.env.PARLEY_TEST_CONCURRENCY ?? 2);
  const runs: Array<{ name: string; kind: string; files: string[] }> = [{ name: 'embedded PGlite', kind: 'pglite', files: plan.pglite }];
  if (process.env.TEST_DATABASE_URL) {
    runs.push({ name: `PostgreSQL (${new URL(process.env.TEST_DATABASE_URL).host})`, kind: 'postgres', files: plan.postgres });
  }

  let failed = false;
  const outcomes: RunOutcome[] = [];
  const scratch = mkdtempSync(path.join(tmpdir(), 'parley-test-'));
  try {
    for (const [i, run] of runs.entries()) {
      if (run.files.length === 0) continue;
      const times = readTimes(timesFile, run.kind);
      const processes = planProcesses(run.files, {
        expectedMs: (file, ownProcess) => times.get(file) ?? guessMs(file, ownProcess),
        alone: (file) => alone.has(file),
        concurrency,
        groupMs: SHARED_PROCESS_MS,
      });
      const { entries, map } = writeEntries(processes, path.join(scratch, `run-${i}`), root);
      const processMap = path.join(scratch, `run-${i}-processes.json`);
      writeFileSync(processMap, JSON.stringify(map));
      const sharing = processes.filter((p) => p.shared);
      const shared = sharing.reduce((n, p) => n + p.files.length, 0);
      console.log(`\n# ${run.files.length} test files on ${run.name}: ${processes.length} processes (${shared} files in ${sharing.length} shared)`);
      const summaryFile = path.join(scratch, `run-${i}.json`);
      const reporters = ['--test-reporter=dot', '--test-reporter-destination=stdout'];
      reporters.push(`--test-reporter=${summaryReporter}`, `--test-reporter-destination=${summaryFile}`);
      const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...reporters, ...nodeOptions, ...entries], {
        cwd: root,
        stdio: 'inherit',
        // Node's on-disk compile cache: each process compiles the same modules (fastify, kysely, the app); with the
        // cache, ~2 of ~12 CPU seconds less for a typical file of its own.
        env: { NODE_COMPILE_CACHE: path.join(cacheDir, 'node-compile'), ...process.env, TEST_DB: run.kind, PARLEY_TEST_PROCESSES: processMap },
      });
      if (result.status !== 0) failed = true;
      const outcome: RunOutcome = { name: run.name, status: result.status, signal: result.signal, summary: readSummary(summaryFile) };
      outcomes.push(outcome);
      // A run narrowed by node options (--test-name-pattern) says nothing about the files' whole times.
      if (outcome.summary && nodeOptions.length === 0) recordTimes(timesFile, run.kind, outcome.summary.fileTimes, all);
      console.log(`\n${formatRun(outcome).join('\n')}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // Once, at the end where it is seen; the journeys themselves skip (see test/browser/chromium.ts).
  if (browser && !browser.run) console.log(`\n# ${browser.message}`);
  if (outcomes.length > 1) console.log(`\n${formatTotal(outcomes).join('\n')}`);
  process.exit(failed ? 1 : 0);
}

export interface RunOutcome {
  name: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** Undefined when node --test ended before its reporters did (killed, out of memory). */
  summary: RunSummary | undefined;
}

function readSummary(file: string): RunSummary | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunSummary;
  } catch {
    return undefined;
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

function counts(s: Pick<RunSummary, 'passed' | 'failed' | 'skipped' | 'todo' | 'cancelled'>): string {
  const parts = [`${s.passed} passed`, `${s.failed} failed`, `${s.skipped} skipped`];
  if (s.todo > 0) parts.push(`${s.todo} todo`);
  if (s.cancelled > 0) parts.push(`${s.cancelled} cancelled`);
  return parts.join(', ');
}

function describeFailure(f: Failure): string {
  if (f.test === '') return `${f.file} (the file failed: ${f.cause ?? 'no reason given'})`;
  return `${f.file} › ${f.test}${f.cancelled ? ' (cancelled)' : ''}`;
}

/** The end of one run: its slowest files, then `name: N passed, N failed, N skipped …` and what failed. */
export function formatRun(outcome: RunOutcome, slowest = SLOWEST_SHOWN): string[] {
  const { name, summary } = outcome;
  if (!summary) {
    const how = outcome.signal ? `killed by ${outcome.signal}` : `exit status ${outcome.status}`;
    return [`# ${name}: no summary, node --test ended early (${how})`];
  }
  const lines = [`# slowest files on ${name}:`];
  for (const { file, ms } of summary.fileTimes.slice(0, slowest)) lines.push(`#   ${formatDuration(ms).padStart(12)}  ${file}`);
  lines.push(`# ${name}: ${counts(summary)} (${summary.files} files, ${formatDuration(summary.ms)})`);
  for (const f of summary.failures) lines.push(`#   failed: ${describeFailure(f)}`);
  return lines;
}

/** After several runs: the sums, and each failure once with the runs it failed on. */
export function formatTotal(outcomes: readonly RunOutcome[]): string[] {
  const total = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0 };
  const failures = new Map<string, string[]>();
  const times: string[] = [];
  for (const { name, summary, status, signal } of outcomes) {
    if (!summary) {
      times.push(`${name} ended early`);
      failures.set(`all of ${name} (${signal ? `killed by ${signal}` : `exit status ${status}`})`, [name]);
      continue;
    }
    for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += summary[key];
    times.push(`${name} ${formatDuration(summary.ms)}`);
    for (const f of summary.failures) {
      const key = describeFailure(f);
      failures.set(key, [...(failures.get(key) ?? []), name]);
    }
  }
  const lines = [`# total: ${counts(total)} (${times.join(', ')})`];
  for (const [what, where] of failures) lines.push(`#   failed: ${what} on ${where.join(' and ')}`);
  return lines;
}

if (import.meta.main) await main();
