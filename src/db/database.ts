import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { lockDataDir } from './data-dir-lock.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export interface OpenedDatabase {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

// Timestamps come back as Date (pg's default); bigint counts (COUNT(*)) as numbers, since ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number.parseFloat(v));

/** A PostgreSQL server when a URL is given, else embedded PGlite: both through pg's Pool and one dialect. */
export async function openDatabase(opts: { databaseUrl?: string; dataDir?: string; pglite?: PGlite }): Promise<OpenedDatabase> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10 });
    // An idle connection killed by the server (restart, failover, pg_terminate_backend) is reported here; without a
    // listener that 'error' event would crash the process. The pool has already dropped it and connects anew on
    // the next query; if the server is really gone, queries fail and /readyz answers 503.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let lite = opts.pglite;
  let unlock = () => {};
  if (!lite) {
    const dir = opts.dataDir ?? './data';
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(dir);
    lite = new PGlite(`${dir}/pglite`);
  }
  const owned = lite;
  // PGlite is one connection: the pool has size 1, so a transaction must use its own `trx`, never the outer db.
  const pool = new pg.Pool(createPgConfig(owned) as unknown as pg.PoolConfig);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'pglite',
    close: async () => {
      await db.destroy();
      if (!opts.pglite) await owned.close();
      unlock();
    },
  };
}
