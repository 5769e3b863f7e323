import { sql } from 'kysely';
import { ConfigError } from '../config.ts';
import type { Db } from '../db/database.ts';
import { restartUsageBackfill } from '../db/migrations/011-usage-rollups.ts';

/**
 * The rollups count days in one zone, recorded in usage_rollup_state. A process started with another STATS_TIMEZONE
 * empties them and restarts the backfill in that zone (the batches then run after start, see runUsageBackfill); the
 * row lock makes a second process starting at the same moment wait and then find the zone already set. (All
 * processes of one database must use the same STATS_TIMEZONE: two that disagree would restart at each other's starts.)
 */
export async function syncRollupTimeZone(db: Db, timeZone: string): Promise<void> {
  try {
    await sql`SELECT now() AT TIME ZONE ${timeZone}`.execute(db);
  } catch {
    throw new ConfigError(`STATS_TIMEZONE: the database does not know the time zone ${timeZone}`);
  }
  const current = await sql<{ txtimezone: string }>`SELECT txtimezone FROM chatbot_schema.usage_rollup_state`.execute(db);
  if (current.rows[0]?.txtimezone === timeZone) return;
  await db.transaction().execute(async (trx) => {
    const locked = await sql<{ txtimezone: string }>`SELECT txtimezone FROM chatbot_schema.usage_rollup_state FOR UPDATE`.execute(trx);
    if (locked.rows[0]?.txtimezone === timeZone) return;
    await restartUsageBackfill(trx, timeZone);
  });
}
