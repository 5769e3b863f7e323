// test-own-process: the statement names are a per-process registry with a cap (src/db/database.ts); the files
// before it in a shared process could fill it, and the first test here needs a name given.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { openScratchPostgres, testDbKind } from '../../test/database.ts';
import { type OpenedDatabase, openDatabase } from './database.ts';

/** A handle of our own on this run's database kind, with the pool size under test (PGlite: always one). */
let scratch: (OpenedDatabase & { url: string }) | undefined;
let lite: PGlite | undefined;
const opened: OpenedDatabase[] = [];

before(async () => {
  if (testDbKind === 'postgres') scratch = await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', 'parley_test', false);
});
after(async () => {
  for (const o of opened) await o.close();
  await scratch?.close();
  await lite?.close();
});

async function open(poolSize: number): Promise<OpenedDatabase> {
  let o: OpenedDatabase;
  if (scratch) o = await openDatabase({ databaseUrl: scratch.url, poolSize });
  else {
    lite ??= new PGlite('memory://');
    o = await openDatabase({ pglite: lite });
  }
  opened.push(o);
  return o;
}

test('a parameterized query is prepared once per connection (a named statement), not parsed and planned each time', async () => {
  const { db } = await open(1);
  for (let i = 0; i < 3; i++) {
    const r = await sql<{ n: number }>`SELECT ${i}::int + 1 AS n`.execute(db);
    assert.equal(r.rows[0]?.n, i + 1);
  }
  const prepared = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE statement LIKE ${'%AS n'}`.execute(db);
  assert.deepEqual(
    prepared.rows.map((r) => r.statement),
    ['SELECT $1::int + 1 AS n'],
  );
});

test('texts without parameters keep the simple protocol: several statements in one text still run (migrations)', async () => {
  const { db } = await open(1);
  await sql`CREATE TEMP TABLE t (n int); INSERT INTO t VALUES (1), (2)`.execute(db);
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM t WHERE n > ${0}`.execute(db);
  assert.equal(r.rows[0]?.n, 2);
});

test('the pool holds at most poolSize connections to PostgreSQL (bites only on PostgreSQL)', { skip: testDbKind !== 'postgres' }, async () => {
  const { db } = await open(3);
  const pids = await Promise.all(
    Array.from({ length: 6 }, () => sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(${0.2})`.execute(db).then((r) => r.rows[0]?.pid)),
  );
  assert.equal(new Set(pids).size, 3);
});

test('the embedded database directory is private (0700), even one made world-readable before', {
  skip: testDbKind === 'postgres' && 'embedded only',
}, async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-perm-'));
  try {
    mkdirSync(path.join(dataDir, 'pglite'), { mode: 0o755 });
    chmodSync(path.join(dataDir, 'pglite'), 0o755); // as a copy or an old restore would leave it
    const o = await openDatabase({ dataDir });
    await o.close();
    // PGlite's own files are 0666: only the directory keeps other users out.
    assert.equal(statSync(path.join(dataDir, 'pglite')).mode & 0o777, 0o700);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
