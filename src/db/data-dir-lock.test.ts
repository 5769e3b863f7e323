import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { TEST_SECRET } from '../../test/app.ts';
import { runCliProcess } from '../../test/cli-process.ts';
import { migratedDataDir, testDbKind } from '../../test/database.ts';
import { type ServerProcess, spawnServer } from '../../test/server-process.ts';
import { DataDirInUseError, type DataDirLockLostError, LOCK_FILE_NAME, lockDataDir } from './data-dir-lock.ts';
import { openDatabase } from './database.ts';

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
  while (stateOf() !== 'Z') await new Promise((r) => setTimeout(r, 5)); // the kill takes effect in its own time
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

test('in one process too: a second lock is refused, naming the lock file and its owner; release frees it, the file stays', { skip }, async () => {
  const dir = freshDir();
  const lock = lockDataDir(dir);
  const file = path.join(dir, LOCK_FILE_NAME);
  assert.throws(
    () => lockDataDir(dir),
    (err: Error) => err instanceof DataDirInUseError && err.lockFile === file && err.message.includes(`process ${process.pid} holds its lock ${file}`),
  );
  // POSIX drops all of a process's locks on a file when it closes any descriptor of it: the refused attempt closed one.
  const other = contender(dir, 'hold');
  assert.match(await other.nextLine(), new RegExp(`^refused .*process ${process.pid} holds`), 'still held against other processes');
  other.child.kill();
  lock.release();
  lock.release(); // twice is harmless
  assert.equal(existsSync(file), true, 'never deleted: a process that opened it just before would lock a file nobody else sees');
  lockDataDir(dir).release();
});

test('a lock file deleted or replaced under its owner is reported as lost (within a second), and released', { skip }, async () => {
  const dir = freshDir();
  const file = path.join(dir, LOCK_FILE_NAME);
  const replacement = path.join(dir, 'another-file');
  const deleteIt = () => rmSync(file);
  const replaceIt = () => {
    writeFileSync(replacement, '');
    renameSync(replacement, file); // a DATA_DIR restored over the running one, say
  };
  for (const change of [deleteIt, replaceIt]) {
    const lost = Promise.withResolvers<DataDirLockLostError>();
    lockDataDir(dir, lost.resolve);
    change();
    assert.equal((await lost.promise).lockFile, file);
    lockDataDir(dir).release(); // released: whoever comes next takes the new file
  }
});

test('the CLI commands obey the same lock: each refuses with exit code 1, naming the lock file and its owner', { skip }, async () => {
  const dir = freshDir();
  mkdirSync(path.join(dir, 'pglite'));
  writeFileSync(path.join(dir, 'pglite', 'PG_VERSION'), '17\n'); // what backup looks for before it locks (never opened here)
  const backupFile = path.join(freshDir(), 'parley.tar.gz');
  writeFileSync(backupFile, gzipSync('a well-formed gzip file: restore checks that much before it locks'));
  const holder = contender(dir, 'hold');
  assert.equal(await holder.nextLine(), 'owner');
  const email = ['--email', 'ops@example.com'];
  const commands: Array<[string, ...string[]]> = [
    ['migrate.ts'],
    ['user-create.ts', ...email],
    ['user-reset-password.ts', ...email],
    ['user-reset-2fa.ts', ...email],
    ['backup.ts', path.join(freshDir(), 'out.tar.gz')],
    ['restore.ts', '--force', backupFile],
  ];
  const env = { DATA_DIR: dir, APP_SECRET: TEST_SECRET }; // (else the first command would write DATA_DIR/app-secret)
  const runs = await Promise.all(commands.map(([script, ...args]) => runCliProcess(script, args, env, 'a long enough passphrase\n')));
  const owner = `process ${holder.child.pid} holds (its lock )?${path.join(dir, LOCK_FILE_NAME)}`;
  for (const [i, run] of runs.entries()) {
    assert.equal(run.code, 1, `${commands[i]?.[0]}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`^Error: .*${owner}\\. Stop `), commands[i]?.[0]);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['pglite', LOCK_FILE_NAME], 'nothing was created, moved or left');
});

test('the real server: of 2 started at once one runs; after kill -9 the next is ready at once; a lost lock stops it', { skip }, async () => {
  const dataDir = await migratedDataDir('lock-server');
  const lockFile = path.join(dataDir, LOCK_FILE_NAME);
  const starts = await Promise.allSettled([1, 2].map(() => spawnServer({ DATA_DIR: dataDir })));
  const running = starts.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const refusals = starts.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
  try {
    assert.equal(running.length, 1, refusals.join('\n'));
    const [winner] = running as [ServerProcess];
    for (const refusal of refusals) {
      assert.match(refusal, new RegExp(`exited with 1:\\n.*in use: process ${winner.child.pid} holds its lock ${lockFile}\\.`));
    }

    winner.child.kill('SIGKILL');
    await winner.exited;
    const next = await spawnServer({ DATA_DIR: dataDir }); // throws if it is refused or not ready
    running.push(next);

    writeFileSync(`${lockFile}.new`, '');
    renameSync(`${lockFile}.new`, lockFile); // as a DATA_DIR restored (or a lock file recreated) under the running server
    assert.equal(await next.exited, 1);
    assert.match(next.output(), new RegExp(`The lock file ${lockFile} was deleted or replaced while this process held it.*Stopping now`));
  } finally {
    for (const server of running) server.child.kill('SIGKILL');
  }
  const reopened = await openDatabase({ dataDir }); // stopped like a crash: the next start recovers
  try {
    const roles = await reopened.db.selectFrom('chatbot_schema.role').select('txname').orderBy('idrole').execute();
    assert.deepEqual(
      roles.map((r) => r.txname),
      ['Admin', 'User'],
    );
  } finally {
    await reopened.close();
  }
});
