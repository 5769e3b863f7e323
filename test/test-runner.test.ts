import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { planRuns, readsDatabaseKind, runsOnce, SelectionError, selectTestFiles } from '../scripts/test.ts';

/** `npm test -- <path>`: which files scripts/test.ts runs. */
const root = path.resolve(import.meta.dirname, '..');
const all = [
  'src/auth/passwords.test.ts',
  'src/auth/throttle.test.ts',
  'src/authz/roles.test.ts',
  'src/chat/chat-api.test.ts',
  'test/authorization.test.ts',
  'test/browser/auth-journey.test.ts',
];

describe('npm test -- <path>', () => {
  test('with PostgreSQL, journeys run there, what can read the database kind runs on both, the rest once; every file runs at least once', () => {
    const files = ['src/a.test.ts', 'test/b.test.ts', 'test/browser/c-journey.test.ts', 'test/browser/chromium.test.ts', 'web/d.test.ts'];
    const readsKind = (f: string) => f === 'src/a.test.ts' || f === 'test/b.test.ts';
    assert.deepEqual(planRuns(files, false, readsKind), { pglite: files, postgres: [] });
    const plan = planRuns(files, true, readsKind);
    assert.deepEqual(plan.pglite, ['src/a.test.ts', 'test/b.test.ts', 'test/browser/chromium.test.ts', 'web/d.test.ts']);
    assert.deepEqual(plan.postgres, ['src/a.test.ts', 'test/b.test.ts', 'test/browser/c-journey.test.ts']);
    assert.deepEqual(new Set([...plan.pglite, ...plan.postgres]), new Set(files));
  });

  test('a file reads the database kind when it or anything it imports (at any depth) does; pure ones do not', () => {
    // Route tests reach test/database.ts through test/app.ts; the CLI test imports it directly.
    for (const f of ['src/admin/users-routes.test.ts', 'src/cli/cli.test.ts', 'test/soak.test.ts', 'test/migrations.test.ts']) {
      assert.equal(readsDatabaseKind(f), true, f);
    }
    for (const f of ['src/chat/markdown.test.ts', 'src/http/form-parser.test.ts', 'test/browser/chromium.test.ts', 'web/chat/sse.test.ts']) {
      assert.equal(readsDatabaseKind(f), false, f);
    }
  });

  test('a file marked `// test-runs-once:` with its reason stays off the PostgreSQL run; unmarked ones do not', () => {
    for (const f of ['test/hostile-bodies.test.ts', 'test/hostile-headers.test.ts', 'test/property-input.test.ts']) {
      assert.equal(runsOnce(f), true, f);
      assert.equal(planRuns([f], true).postgres.includes(f), false, f);
    }
    for (const f of ['test/authorization.test.ts', 'src/admin/users-routes.test.ts', 'test/migrations.test.ts']) {
      assert.equal(runsOnce(f), false, f);
      assert.equal(planRuns([f], true).postgres.includes(f), true, f);
    }
  });

  test('no path: every test file', () => {
    assert.deepEqual(selectTestFiles(all, []), [...all].sort());
  });

  test('a directory runs the test files under it, and nothing that merely starts with the same letters', () => {
    assert.deepEqual(selectTestFiles(all, ['src/auth']), ['src/auth/passwords.test.ts', 'src/auth/throttle.test.ts']);
    assert.deepEqual(selectTestFiles(all, ['src/auth/']), ['src/auth/passwords.test.ts', 'src/auth/throttle.test.ts']);
    assert.deepEqual(selectTestFiles(all, ['./test']), ['test/authorization.test.ts', 'test/browser/auth-journey.test.ts']);
    assert.deepEqual(selectTestFiles(all, ['.']), [...all].sort());
  });

  test('a file runs exactly that file', () => {
    assert.deepEqual(selectTestFiles(all, ['src/auth/throttle.test.ts']), ['src/auth/throttle.test.ts']);
    assert.deepEqual(selectTestFiles(all, [path.join(root, 'test/authorization.test.ts')]), ['test/authorization.test.ts']);
  });

  test('several paths: their files once each, in order', () => {
    assert.deepEqual(selectTestFiles(all, ['test/browser', 'src/auth/throttle.test.ts', 'test']), [
      'src/auth/throttle.test.ts',
      'test/authorization.test.ts',
      'test/browser/auth-journey.test.ts',
    ]);
  });

  test('a path is relative to where npm was called from', () => {
    assert.deepEqual(selectTestFiles(all, ['throttle.test.ts'], path.join(root, 'src/auth')), ['src/auth/throttle.test.ts']);
    assert.deepEqual(selectTestFiles(all, ['../chat'], path.join(root, 'src/auth')), ['src/chat/chat-api.test.ts']);
  });

  test('a path that matches no test file is an error that says so', () => {
    // `test/auth` used to select test/authorization.test.ts by substring.
    assert.throws(
      () => selectTestFiles(all, ['test/auth']),
      (err: Error) => {
        assert.ok(err instanceof SelectionError);
        assert.match(err.message, /^test\/auth: no such file or directory; did you mean test\/authorization\.test\.ts\?$/);
        return true;
      },
    );
    assert.throws(() => selectTestFiles(all, ['src/auth/throttle']), /no such file or directory; did you mean src\/auth\/throttle\.test\.ts/);
    assert.throws(() => selectTestFiles(all, ['docs']), /^Error: docs: no test files \(src\/\*\*\/\*\.test\.ts, .*\) there$/);
    assert.throws(() => selectTestFiles(all, ['src/auth', 'nothing/here']), /nothing\/here: no such file or directory$/);
    assert.throws(() => selectTestFiles(all, ['../elsewhere']), /outside the project/);
  });

  test('the runner itself refuses such a path at once, with one line and exit code 1', () => {
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const started = Date.now();
    const res = spawnSync(process.execPath, ['scripts/test.ts', 'test/no-such-dir'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...env, INIT_CWD: root },
      timeout: 60_000,
    });
    assert.equal(res.status, 1, res.stdout + res.stderr);
    assert.equal(res.stderr, 'npm test: test/no-such-dir: no such file or directory\n');
    assert.doesNotMatch(res.stdout, /test files on/, 'no test run started');
    assert.ok(Date.now() - started < 10_000, 'before building the database template');
  });
});

/** Runs scripts/test.ts on the fixture suite in test/fixtures/runner-suite, as `npm test` would. */
function runFixtureSuite(args: string[], extraEnv: Record<string, string> = {}) {
  const { NODE_TEST_CONTEXT: _, TEST_DATABASE_URL: __, ...env } = process.env;
  const fixtures = path.join(root, 'test/fixtures/runner-suite');
  return spawnSync(process.execPath, ['scripts/test.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...env, PARLEY_TEST_ROOT: fixtures, INIT_CWD: fixtures, PARLEY_TEST_TIMES: timesFile, ...extraEnv },
    timeout: 180_000,
  });
}
// The fixtures' times, kept apart from the suite's own (.cache/test-times.json orders the real runs).
const scratch = mkdtempSync(path.join(tmpdir(), 'parley-test-runner-'));
const timesFile = path.join(scratch, 'test-times.json');
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('what npm test says at the end', () => {
  test('each run ends with its counts, its slowest files and the tests that failed; then the total', () => {
    // Two runs as with TEST_DATABASE_URL (the fixtures use no database, so the address is never reached).
    const res = runFixtureSuite([], { TEST_DATABASE_URL: 'postgres://nobody@fixture.invalid:5432/none' });
    assert.equal(res.status, 1, res.stdout + res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    for (const run of ['embedded PGlite', 'PostgreSQL (fixture.invalid:5432)']) {
      const at = lines.findIndex((l) => l.startsWith(`# ${run}: `));
      assert.ok(at >= 0, `a summary line for ${run} in:\n${res.stdout}`);
      assert.match(lines[at] ?? '', new RegExp(`^# ${run.replace(/[()]/g, '\\$&')}: 4 passed, 2 failed, 1 skipped \\(5 files, \\d+\\.\\d s\\)$`));
      assert.deepEqual(lines.slice(at + 1, at + 3), [
        '#   failed: test/failing.test.ts › arithmetic › subtracts',
        '#   failed: test/broken.test.ts (the file failed: Error: this fixture file does not load)',
      ]);
      const slowest = lines.slice(lines.lastIndexOf(`# slowest files on ${run}:`, at) + 1, at);
      assert.equal(slowest.length, 5, `every file with its time:\n${res.stdout}`);
      for (const line of slowest) assert.match(line, /^# +\d+\.\d s {2}test\/(passing|failing|broken|world-a|world-b)\.test\.ts$/);
    }
    assert.match(lines.at(-3) ?? '', /^# total: 8 passed, 4 failed, 2 skipped \(embedded PGlite \d+\.\d s, PostgreSQL \(fixture\.invalid:5432\) \d+\.\d s\)$/);
    assert.deepEqual(lines.slice(-2), [
      '#   failed: test/failing.test.ts › arithmetic › subtracts on embedded PGlite and PostgreSQL (fixture.invalid:5432)',
      '#   failed: test/broken.test.ts (the file failed: Error: this fixture file does not load) on embedded PGlite and PostgreSQL (fixture.invalid:5432)',
    ]);
  });

  test('a suite that passes ends with "0 failed" and exit code 0, the dots still shown', () => {
    const res = runFixtureSuite(['test/passing.test.ts']);
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^\.+$/m, 'the dot reporter shows progress');
    assert.match(res.stdout.trimEnd().split('\n').at(-1) ?? '', /^# embedded PGlite: 1 passed, 0 failed, 1 skipped \(1 files, \d+\.\d s\)$/);
    assert.doesNotMatch(res.stdout, /# total/, 'one run: no total');
  });

  test("files share a process, each with its own hooks: one file's `after` runs before the next file's `before`", () => {
    // One worker: the two files in one process (with --test-isolation=none, both `before`s would run first).
    const res = runFixtureSuite(['test/world-a.test.ts', 'test/world-b.test.ts'], { PARLEY_TEST_CONCURRENCY: '1' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^# 2 test files on embedded PGlite: 1 processes \(2 files in 1 shared\)$/m);
    assert.match(res.stdout.trimEnd().split('\n').at(-1) ?? '', /^# embedded PGlite: 2 passed, 0 failed, 0 skipped \(2 files, \d+\.\d s\)$/);
    const times = JSON.parse(readFileSync(timesFile, 'utf8')) as { pglite: Record<string, number> };
    for (const f of ['test/world-a.test.ts', 'test/world-b.test.ts']) assert.equal(typeof times.pglite[f], 'number', `${f}: the time the next run orders by`);
  });
});
