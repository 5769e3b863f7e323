import { sql } from 'kysely';
import pg from 'pg';
import { type Db, serverUrlOf } from './database.ts';
import type { OutageLog } from './outage.ts';

/**
 * Each app process on PostgreSQL holds a session-level advisory lock on an instance id of its own for as long as
 * it lives, on ONE connection of its own (not the pool's: a pooled connection is shared, and a lock on it would
 * outlive nothing). The answers it generates record that id (response.idowner, migration 006). When the process
 * dies, its connection closes and PostgreSQL drops the lock at once, so any other process can tell — from
 * pg_locks, in the same UPDATE that sweeps — that those answers have no owner any more (see response-store.ts).
 *
 * Embedded PGlite has one connection and only ever one process (the data directory is locked), so there is no
 * lock and no owner: every answer still active when the app starts is from a process that is gone.
 */

/** The first of pg_advisory_lock's two int4 keys ('Prly'); the instance id is the second. Two-key locks never meet one-key ones. */
export const INSTANCE_LOCK_CLASS = 0x50726c79;

/** How soon a lost lock connection is tried again (a PostgreSQL restart, a failover, pg_terminate_backend). */
export const RECONNECT_DELAY_MS = 1_000;

export interface LockLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface InstanceLock {
  /** This process's instance id (recorded on its answers); null on PGlite, where there is nothing to tell apart. */
  readonly owner: number | null;
  /**
   * How long the lock has been held since it was last taken again after a break (Infinity if it never broke, and on
   * PGlite; 0 while it is being taken again). After the database restarts, every process's lock is gone until it
   * reconnects (RECONNECT_DELAY_MS): a sweep in that window would take live answers for orphans, so sweeps wait
   * until their own lock has settled (chat-routes.ts).
   */
  heldForMs(): number;
  /** Releases the lock (the connection's end does it). */
  close(): Promise<void>;
}

/** `outage`: where a reconnect failing because the database is away is counted rather than logged each second. */
export async function holdInstanceLock(db: Db, log: LockLog, outage?: OutageLog): Promise<InstanceLock> {
  const url = serverUrlOf(db);
  if (!url) return { owner: null, heldForMs: () => Number.POSITIVE_INFINITY, close: async () => {} };
  const { rows } = await sql<{ id: number }>`SELECT nextval('chatbot_schema.instance_seq')::integer AS id`.execute(db);
  const owner = rows[0]?.id;
  if (owner === undefined) throw new Error('no instance id');

  let client: pg.Client | null = null;
  let heldSince = 0;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  // Connects and takes the lock; on a reconnect the same id is taken again, so answers begun before stay owned.
  const connect = async () => {
    const c = new pg.Client({ connectionString: url, keepAlive: true, application_name: `parley instance ${owner}` });
    c.on('error', () => lost(c)); // without a listener, a dropped connection's 'error' would end the process
    c.on('end', () => lost(c));
    await c.connect();
    // try, not wait: after a network cut the server may still hold the old session's lock until it notices.
    const taken = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [INSTANCE_LOCK_CLASS, owner]);
    if (!taken.rows[0]?.ok) {
      await c.end();
      throw new Error(`instance lock ${owner} is still held by an earlier connection`);
    }
    if (closed) await c.end();
    else {
      client = c;
      heldSince = Date.now();
    }
  };
  const lost = (c: pg.Client) => {
    if (closed || client !== c) return;
    client = null;
    heldSince = 0;
    log.warn({ owner }, 'the instance lock connection was lost; reconnecting');
    scheduleReconnect();
  };
  const scheduleReconnect = () => {
    clearTimeout(retry);
    retry = setTimeout(() => {
      connect()
        .then(() => {
          if (!client) return;
          outage?.succeeded();
          log.info({ owner }, 'instance lock taken again');
        })
        .catch((err) => {
          if (!outage?.failed('instance lock reconnects', err)) log.warn({ err, owner }, 'could not take the instance lock again; retrying');
          if (!closed) scheduleReconnect();
        });
    }, RECONNECT_DELAY_MS).unref();
  };

  await connect();
  heldSince = Number.NEGATIVE_INFINITY; // taken at start, not again after a break: nothing to settle from
  return {
    owner,
    heldForMs: () => (client ? Date.now() - heldSince : 0),
    close: async () => {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch((err: unknown) => log.error({ err, owner }, 'could not close the instance lock connection'));
    },
  };
}
