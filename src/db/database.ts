import { chmodSync, mkdirSync } from 'node:fs';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { type DataDirLock, type DataDirLockLostError, lockDataDir } from './data-dir-lock.ts';
import { createClusterFromPrebuilt, embeddedStartOptions } from './embedded-start.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

/** The server URL of each Db openDatabase opened on PostgreSQL (src/db/instance-lock.ts opens a connection of its own there). */
const serverUrls = new WeakMap<Db, string>();
export const serverUrlOf = (db: Db): string | undefined => serverUrls.get(db);

/** The pool behind each Db openDatabase opened (either kind), for the /metrics gauges read on each scrape. */
const pools = new WeakMap<Db, pg.Pool>();
export interface PoolStats {
  total: number;
  idle: number;
  /** Queries waiting for a connection: all of them are in use. */
  waiting: number;
  max: number;
}
export function poolStatsOf(db: Db): PoolStats | undefined {
  const pool = pools.get(db);
  return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 };
}

export interface OpenedDatabase {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

// Timestamps come back as Date (pg's default); bigint counts (COUNT(*)) as numbers, since ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number.parseFloat(v));

/**
 * At most this many distinct SQL texts get a statement name (and so are prepared once per connection); any beyond
 * run unnamed as before. Our queries are a few dozen fixed texts; the cap keeps a query whose text varies (an IN
 * list of varying length) from filling every server connection with prepared statements.
 */
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `parley_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * pg's Client, giving each distinct parameterized SQL text a statement name: the server parses and plans it once
 * per connection instead of on every query (Kysely sends `query(text, values)`, which pg runs unnamed), and each
 * later query sends only Bind/Execute. Texts without parameters stay on the simple protocol, which also allows
 * several statements in one text (migrations). Works the same through PGlite's pg adapter (one backend).
 */
class PreparingClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // The pool listens for 'error' only on idle connections. One checked out (inside a transaction, between a
    // query's end and its release) whose server goes away (a restart: 57P01, a crash: the socket closes) emits
    // 'error' with no listener, which ends the process. The error also reaches the query that runs, or the next
    // one; the client is no longer queryable, so the pool discards it on release instead of handing it out again.
    this.on('error', () => {});
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this forwards all of them.
  override query(...args: any[]): any {
    const [text, values] = args;
    if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && args.length === 2) {
      const name = statementName(text);
      if (name) return super.query({ name, text, values });
    }
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    return (super.query as (...a: any[]) => any)(...args);
  }
}

/**
 * Rows of one parameterized query sent straight to the pool, as the same named statement Kysely's query would use
 * (PreparingClient): for the API's admission, on the way to the first token, where Kysely's executor and connection
 * provider cost about 0.05 ms a call (calls 4 ms apart, 2-core machine). A Db that is not openDatabase's own (a
 * `withPlugin` copy in a test) goes through Kysely, so its plugins still see the query.
 */
export async function queryRows<R>(db: Db, text: string, values: unknown[]): Promise<R[]> {
  const pool = pools.get(db);
  if (!pool) return (await db.executeQuery<R>(CompiledQuery.raw(text, values))).rows;
  const name = statementName(text);
  return (await pool.query(name ? { name, text, values } : { text, values })).rows as R[];
}

/**
 * PGlite for a small server (docs/decisions/004): PostgreSQL's defaults size its caches for a machine of its own;
 * in our process they are memory the app holds all the time. shared_buffers 128 MB → 16 MB: the data of a small
 * server is in the OS page cache anyway (the cluster is files in DATA_DIR), and the page benchmark does not move.
 */
export function embeddedOptions(): PGliteOptions {
  const settings = ['shared_buffers=16MB', 'maintenance_work_mem=16MB'];
  // pg_trgm: the admin user list's substring search uses trigram indexes (migrations 010 and 012); btree_gin: the
  // chat search's index over owner and words (migration 028).
  return { startParams: [...PGlite.defaultStartParams, ...settings.flatMap((s) => ['-c', s])], extensions: { pg_trgm, btree_gin } };
}

/** Longest wait to connect to PostgreSQL or for a free pooled connection, in ms ("fail fast", README "Failure behaviour"). */
export const CONNECT_TIMEOUT_MS = 5_000;

export interface OpenOptions {
  /** A PostgreSQL server; without it, embedded PGlite in `dataDir` (or the given instance). */
  databaseUrl?: string;
  dataDir?: string;
  pglite?: PGlite;
  /** Connections to the PostgreSQL server (DB_POOL_SIZE); PGlite is always one. */
  poolSize?: number;
  /** What to do if DATA_DIR's lock file is deleted or replaced while open (default: exit at once; see data-dir-lock.ts). */
  onLockLost?: (err: DataDirLockLostError) => void;
}

/** A PostgreSQL server when a URL is given, else embedded PGlite: both through pg's Pool and one dialect. */
export async function openDatabase(opts: OpenOptions): Promise<OpenedDatabase> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      Client: PreparingClient,
      // pg waits forever by default, both to connect and for a free connection: a server that drops packets (a
      // network cut, a failover in progress) would hold every request. Past this the query fails and the request
      // gets a 503 (src/http/errors.ts); a server that is down refuses at once anyway.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // TCP keepalive probes a connection silent for 10 s, then every second, 10 times (Node 24's libuv sets
      // TCP_KEEPIDLE 10, TCP_KEEPINTVL 1, TCP_KEEPCNT 10: seen with strace), so one whose server vanished without a
      // word (a network cut) fails after about 20 s, also while a query on it waits for its answer, instead of
      // after Linux's default two hours. Not measured end to end: the tests cannot cut a loopback link.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle connection killed by the server (restart, failover, pg_terminate_backend) is reported here; without a
    // listener that 'error' event would crash the process. The pool has already dropped it and connects anew on
    // the next query; if the server is really gone, queries fail and /readyz answers 503.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    serverUrls.set(db, opts.databaseUrl);
    pools.set(db, pool);
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let lite = opts.pglite;
  let lock: DataDirLock | undefined;
  if (!lite) {
    const dir = opts.dataDir ?? './data';
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    lock = lockDataDir(dir, opts.onLockLost);
    // The prebuilt cluster and the compilation hints keep every start under 512 MiB (docs/decisions/004).
    // Under the lock: the cluster is created by a child process, which takes no lock of its own.
    await createClusterFromPrebuilt(`${dir}/pglite`);
    // PGlite writes its files world-readable (0666 whatever the umask): the directory around them is what keeps
    // other local users from the password hashes and chats, so it is 0700 however it was made (a restore, a copy).
    mkdirSync(`${dir}/pglite`, { recursive: true, mode: 0o700 });
    chmodSync(`${dir}/pglite`, 0o700);
    lite = new PGlite(`${dir}/pglite`, await embeddedStartOptions(embeddedOptions()));
  }
  const owned = lite;
  // PGlite is one connection: the pool has size 1, so a transaction must use its own `trx`, never the outer db.
  const pool = new pg.Pool({ ...(createPgConfig(owned) as unknown as pg.PoolConfig), Client: PreparingClient });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return {
    db,
    kind: 'pglite',
    close: async () => {
      await db.destroy();
      if (!opts.pglite) await owned.close();
      lock?.release();
    },
  };
}
