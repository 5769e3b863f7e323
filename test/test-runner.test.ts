import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SelectionError, selectTestFiles } from '../scripts/test.ts';

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
