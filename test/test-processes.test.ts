// test-runs-once: the runner's planning and summary, pure functions over files and events; it reaches TEST_DB only through the runner's own scan of it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ownProcessReasons, planProcesses, writeEntries } from '../scripts/test-processes.ts';
import { readTimes, recordTimes } from '../scripts/test-times.ts';
import { summarize } from './summary-reporter.ts';

/** Which test files share a Node process, in which order processes start, and how the summary names their files. */
const root = path.resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(path.join(tmpdir(), 'parley-test-processes-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A tiny project in the scratch directory: `files` relative path → text. */
function project(name: string, files: Record<string, string>): string {
  const dir = path.join(scratch, name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

describe('which files get a process of their own', () => {
  test("the suite's own: journeys, files starting servers or CLIs, files reaching a top-level await; route tests share", async () => {
    const files = [
      'test/browser/chat-journey.test.ts',
      'src/cli/cli.test.ts',
      'test/crash-recovery.test.ts',
      'test/hostile-headers.test.ts',
      'src/chat/chat-api.test.ts',
      'src/admin/users-routes.test.ts',
      'test/authorization.test.ts',
    ];
    const reasons = await ownProcessReasons(files, root);
    assert.equal(reasons.get('test/browser/chat-journey.test.ts'), 'a browser journey');
    assert.equal(reasons.get('src/cli/cli.test.ts'), 'starts processes (test/cli-process.ts)');
    assert.equal(reasons.get('test/crash-recovery.test.ts'), 'starts processes (test/server-process.ts)');
    assert.equal(reasons.get('test/hostile-headers.test.ts'), 'top-level await in test/hostile-headers.test.ts');
    for (const f of ['src/chat/chat-api.test.ts', 'src/admin/users-routes.test.ts', 'test/authorization.test.ts']) assert.equal(reasons.get(f), undefined, f);
  });

  test('found at any depth of relative imports: a top-level await the parser sees (not a one-line async function), a marker, process-wide state', async () => {
    const dir = project('scan', {
      'test/a-shares.test.ts': "import { x } from './helper.ts';\nconst n = async () => (await x()).length;\n",
      'test/helper.ts': 'export const x = async () => [await 1];\nexport const y = () => { /* not await at the top */ };\n',
      'test/b-main-await.test.ts': "import './cli.ts';\n",
      'test/cli.ts': 'if (import.meta.main) {\n  await Promise.resolve();\n}\n',
      'test/c-marked.test.ts': "import './marked.ts';\n",
      'test/marked.ts': '// test-own-process: keeps a registry of its own\nexport {};\n',
      'test/d-env.test.ts': "process.env.LOG_LEVEL = 'debug';\n",
      'test/e-listener.test.ts': "process.on('warning', () => {});\n",
      'test/f-reads-env.test.ts': "const level = process.env.LOG_LEVEL === 'debug';\n",
      'test/g-spawns.test.ts': "import { spawn } from 'node:child_process';\n",
      'src/h-app.test.ts': "import './app-spawns.ts';\n",
      'src/app-spawns.ts': "import { spawn } from 'node:child_process';\nprocess.on('exit', () => {});\n",
    });
    const files = ['test/a-shares.test.ts', 'test/b-main-await.test.ts', 'test/c-marked.test.ts', 'test/d-env.test.ts'];
    files.push('test/e-listener.test.ts', 'test/f-reads-env.test.ts', 'test/g-spawns.test.ts', 'src/h-app.test.ts');
    assert.deepEqual(
      new Map([...(await ownProcessReasons(files, dir))].sort()),
      new Map([
        ['test/b-main-await.test.ts', 'top-level await in test/cli.ts'],
        ['test/c-marked.test.ts', 'marked test-own-process in test/marked.ts'],
        ['test/d-env.test.ts', 'changes process-wide state (test/d-env.test.ts)'],
        ['test/e-listener.test.ts', 'changes process-wide state (test/e-listener.test.ts)'],
        ['test/g-spawns.test.ts', 'starts processes (test/g-spawns.test.ts)'],
      ]),
      "a-shares: awaits only in functions; f: reads env; h: src/'s own child processes are the app's",
    );
  });
});

describe('the processes of a run', () => {
  const alone = new Set(['journey', 'spawner']);
  const plan = (times: Record<string, number>, concurrency = 2, groupMs = 60_000) =>
    planProcesses(Object.keys(times), { expectedMs: (f) => times[f] ?? 0, alone: (f) => alone.has(f), concurrency, groupMs });

  test('longest expected first, so that the last to start are short; files of their own stay alone', () => {
    const processes = plan({ a: 5_000, journey: 50_000, b: 20_000, spawner: 30_000, c: 1_000, d: 9_000 });
    assert.deepEqual(
      processes.map((p) => [p.files, p.shared, p.expectedMs]),
      [
        [['journey'], false, 50_000],
        [['spawner'], false, 30_000],
        [['b'], true, 20_000],
        [['a', 'c', 'd'], true, 15_000],
      ],
    );
  });

  test('shared files go into processes of about groupMs of work each, balanced, and at least one per worker', () => {
    const times = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${String(i).padStart(2, '0')}`, 1_000 + i * 100]));
    const total = Object.values(times).reduce((a, b) => a + b, 0); // 118 s
    const processes = plan(times, 2, 30_000);
    assert.equal(processes.length, Math.ceil(total / 30_000));
    const loads = processes.map((p) => p.expectedMs);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 4_900, `balanced: ${loads.join(', ')}`);
    assert.deepEqual(processes.flatMap((p) => p.files).sort(), Object.keys(times).sort(), 'every file once');
    assert.equal(plan({ a: 1_000, b: 1_000, c: 1_000 }, 2).length, 2, 'two workers: two processes though one would do');
    assert.equal(plan({ a: 1_000 }, 2).length, 1, 'never an empty process');
  });

  test("numbered entries, which node --test's sorting keeps in order: a shared one loads its files through test/file-group.ts", () => {
    const processes = plan(Object.fromEntries([...'abcdefghijkl'].map((f, i) => [f, i * 30_000])), 2, 30_000);
    const { entries, map } = writeEntries(processes, path.join(scratch, 'entries'), root);
    assert.deepEqual([...entries].sort(), entries, 'sorted as written');
    assert.ok(processes.length >= 10, 'two-digit numbers');
    for (const [i, entry] of entries.entries()) {
      const text = readFileSync(entry, 'utf8');
      const p = processes[i];
      assert.deepEqual(map[entry], { files: p?.files, shared: p?.shared });
      if (p?.shared) assert.match(text, /runFilesInOneProcess\(.*\["[a-l]"/);
      else assert.match(text, /^await import\("file:.*"\);$/m);
    }
  });

  test('times are kept per run, merged with the earlier ones, and forgotten with their file', () => {
    const file = path.join(scratch, 'times', 'test-times.json');
    assert.deepEqual(readTimes(file, 'pglite'), new Map(), 'none yet');
    recordTimes(
      file,
      'pglite',
      [
        { file: 'a', ms: 1_234.4 },
        { file: 'b', ms: 20 },
      ],
      ['a', 'b', 'c'],
    );
    recordTimes(file, 'postgres', [{ file: 'a', ms: 99 }], ['a', 'b', 'c']);
    recordTimes(file, 'pglite', [{ file: 'c', ms: 7 }], ['a', 'c']);
    assert.deepEqual(
      readTimes(file, 'pglite'),
      new Map([
        ['a', 1_234],
        ['c', 7],
      ]),
    );
    assert.deepEqual(readTimes(file, 'postgres'), new Map([['a', 99]]));
    writeFileSync(file, '{"pglite": {"a": 1');
    assert.deepEqual(readTimes(file, 'pglite'), new Map(), 'a file cut short is guessed around');
  });
});

// node --test names a file outside the cwd, as the runner's entries are, by its absolute path.
describe('the summary of a shared process', () => {
  const fileGroup = path.join(root, 'test/file-group.ts');
  const entry = path.join(scratch, '1-3-files.mjs');
  const processes = { [entry]: { files: ['test/a.test.ts', 'test/b.test.ts', 'test/c.test.ts'], shared: true } };
  const event = (type: string, data: Record<string, unknown>) => ({ type, data: { nesting: 0, details: { duration_ms: 10 }, ...data } });
  const fileSuite = (type: string, name: string, ms: number, error?: unknown) =>
    event(type, { name, file: fileGroup, details: { duration_ms: ms, type: 'suite', ...(error ? { error } : {}) } });

  test("each file's suite is that file: its time, and the load error it failed with", () => {
    const summary = summarize(
      [
        event('test:pass', { name: 'adds', nesting: 1, file: path.join(root, 'test/a.test.ts'), details: { duration_ms: 3, type: 'test' } }),
        fileSuite('test:complete', 'test/a.test.ts', 40),
        fileSuite('test:pass', 'test/a.test.ts', 40),
        fileSuite('test:complete', 'test/b.test.ts', 5),
        fileSuite('test:fail', 'test/b.test.ts', 5, { failureType: 'testCodeFailure', cause: new SyntaxError('Unexpected token') }),
        fileSuite('test:complete', 'test/c.test.ts', 70),
        fileSuite('test:pass', 'test/c.test.ts', 70),
        event('test:complete', { name: entry, file: entry, details: { duration_ms: 200 } }),
        event('test:fail', { name: entry, file: entry, details: { duration_ms: 200, error: { cause: 'test failed' } } }),
      ],
      root,
      processes,
    );
    assert.deepEqual(summary.fileTimes, [
      { file: 'test/c.test.ts', ms: 70 },
      { file: 'test/a.test.ts', ms: 40 },
      { file: 'test/b.test.ts', ms: 5 },
    ]);
    assert.deepEqual(summary.failures, [{ file: 'test/b.test.ts', test: '', cause: 'SyntaxError: Unexpected token' }]);
    assert.equal(summary.failed, 1, 'the process failing because a file did is not counted again');
    assert.equal(summary.passed, 1);
  });

  test('a process that ended in the middle names the file it was running and the files it never ran', () => {
    const summary = summarize(
      [
        fileSuite('test:complete', 'test/a.test.ts', 40),
        fileSuite('test:pass', 'test/a.test.ts', 40),
        event('test:stderr', { file: entry, message: 'Error: out of memory\n    at somewhere\n' }),
        event('test:complete', { name: entry, file: entry, details: { duration_ms: 200 } }),
        event('test:fail', { name: entry, file: entry, details: { duration_ms: 200, error: { cause: 'test failed' } } }),
      ],
      root,
      processes,
    );
    assert.deepEqual(summary.failures, [
      { file: 'test/b.test.ts', test: '', cause: 'Error: out of memory (its process, shared with 2 other files, ended; not run: test/c.test.ts)' },
    ]);
    assert.deepEqual(summary.fileTimes, [{ file: 'test/a.test.ts', ms: 40 }]);
  });

  test('a process of its own is named by its file, not by its entry', () => {
    const own = path.join(scratch, '2-test-soak.mjs');
    const summary = summarize(
      [
        event('test:stderr', { file: own, message: 'Error: cannot start\n' }),
        event('test:complete', { name: own, file: own, details: { duration_ms: 900 } }),
        event('test:fail', { name: own, file: own, details: { duration_ms: 900, error: { cause: 'test failed' } } }),
      ],
      root,
      { [own]: { files: ['test/soak.test.ts'], shared: false } },
    );
    assert.deepEqual(summary.fileTimes, [{ file: 'test/soak.test.ts', ms: 900 }]);
    assert.deepEqual(summary.failures, [{ file: 'test/soak.test.ts', test: '', cause: 'Error: cannot start' }]);
  });
});
