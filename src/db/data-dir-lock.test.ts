import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DataDirInUseError, lockDataDir } from './data-dir-lock.ts';

const freshDir = () => mkdtempSync(path.join(tmpdir(), 'parley-lock-'));

test('a second owner is refused while the first one runs; release frees the directory', () => {
  const dir = freshDir();
  const release = lockDataDir(dir);
  // Another live process holds it: pretend by writing our parent's pid (alive for the whole test).
  release();
  writeFileSync(path.join(dir, 'pglite.lock'), String(process.ppid));
  assert.throws(() => lockDataDir(dir), DataDirInUseError);
});

test('a lock left by a process that is gone is taken over', () => {
  const dir = freshDir();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(path.join(dir, 'pglite.lock'), dead);
  const release = lockDataDir(dir);
  release();
  assert.equal(existsSync(path.join(dir, 'pglite.lock')), false);
});
