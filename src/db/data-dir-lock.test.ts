import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, test } from 'node:test';
import { testDbKind } from '../../test/database.ts';

// These tests are about the embedded database's DATA_DIR, which does not change with TEST_DB: the PGlite run has them.
const skip = testDbKind === 'postgres' ? 'the data-directory lock guards the embedded database: the PGlite run tests it' : false;

const root = path.resolve(import.meta.dirname, '../..');
const contenderScript = path.join(root, 'test/data-dir-contender.ts');
const freshDir = () => mkdtempSync(path.join(tmpdir(), 'parley-lock-'));

interface Contender {
  child: ChildProcessWithoutNullStreams;
  /** The next line the process prints. */
  nextLine(): Promise<string>;
  exited: Promise<void>;
}

const running = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL'); // a failed assertion must not leave a holder keeping the run alive
  running.clear();
});

/** A process taking the lock as the server does (test/data-dir-contender.ts); `shell` runs it through `sh -c`. */
function contender(dir: string, mode: 'race' | 'hold', shell?: string): Contender {
  const child = shell
    ? spawn('sh', ['-c', shell, 'sh', process.execPath, contenderScript, dir, mode], { stdio: 'pipe' })
    : spawn(process.execPath, [contenderScript, dir, mode], { stdio: 'pipe' });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else queue.push(line);
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const nextLine = () => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      child.once('exit', (code) => reject(new Error(`the contender exited (${code}) before printing a line: ${stderr}`)));
    });
  };
  return { child, nextLine, exited };
}

test('4 processes starting at the same moment: exactly one owner, in each of 20 rounds', { skip }, async () => {
  const dir = freshDir();
  const owners: number[] = [];
  for (let round = 0; round < 20; round++) {
    const contenders = Array.from({ length: 4 }, () => contender(dir, 'race'));
    for (const c of contenders) assert.equal(await c.nextLine(), 'ready');
    for (const c of contenders) c.child.stdin.write('go\n');
    const answers = await Promise.all(contenders.map((c) => c.nextLine()));
    owners.push(answers.filter((a) => a === 'owner').length);
    // Half the rounds end as a crash leaves the lock (kill -9), half with a release: the next round starts from both.
    for (const c of contenders) {
      if (round % 2 === 0) c.child.kill('SIGKILL');
      else c.child.stdin.end();
    }
    await Promise.all(contenders.map((c) => c.exited));
  }
  assert.deepEqual(owners, Array(20).fill(1), `owners per round: ${owners.join(' ')}`);
});

test('a lock whose owner was killed but not yet reaped (a zombie) is taken at once', { skip }, async () => {
  const dir = freshDir();
  // sh starts the contender, then becomes `sleep`, which never waits for its child: once killed, it stays a zombie.
  const parent = contender(dir, 'hold', '"$@" & echo $!; exec sleep 60');
  const pid = Number(await parent.nextLine());
  assert.equal(await parent.nextLine(), 'owner');
  process.kill(pid, 'SIGKILL');
  const stateOf = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  while (stateOf() !== 'Z') await new Promise((r) => setImmediate(r));
  try {
    const next = contender(dir, 'hold');
    assert.equal(await next.nextLine(), 'owner');
    next.child.kill();
  } finally {
    parent.child.kill();
  }
});

test('a lock naming a live process that does not hold it (the old pid format, a copied DATA_DIR) is taken over', { skip }, async () => {
  const dir = freshDir();
  writeFileSync(path.join(dir, 'pglite.lock'), String(process.pid)); // the old format, naming a live process
  const first = contender(dir, 'hold');
  assert.equal(await first.nextLine(), 'owner');
  try {
    const copy = freshDir();
    cpSync(dir, copy, { recursive: true }); // copied while its owner runs: the copy has no owner
    const second = contender(copy, 'hold');
    assert.equal(await second.nextLine(), 'owner');
    second.child.kill();
    const third = contender(dir, 'hold');
    assert.match(await third.nextLine(), /^refused /, 'the original is still held');
    third.child.kill();
  } finally {
    first.child.kill();
  }
});
