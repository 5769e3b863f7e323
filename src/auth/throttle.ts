import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export interface ThrottleRule {
  /** Failures allowed within the window before the key is locked. */
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

/** Contract: 10 failed passwords for one account within 15 minutes lock its password sign-in for 15 minutes. */
export const ACCOUNT_PASSWORD_RULE: ThrottleRule = { maxFailures: 10, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
/** One address guessing across many accounts; generous, since offices share an address. */
export const IP_PASSWORD_RULE: ThrottleRule = { maxFailures: 50, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
/** Account creation from one address. */
export const IP_REGISTRATION_RULE: ThrottleRule = { maxFailures: 20, windowMs: 60 * 60_000, lockMs: 60 * 60_000 };

/**
 * Counters live in the database (login_throttle), so a lock holds across app processes and restarts.
 * Keys are namespaced strings such as `pw:alice@example.com` or `ip:203.0.113.9`.
 */
export async function secondsLocked(db: Db, key: string): Promise<number> {
  const row = await db
    .selectFrom('chatbot_schema.login_throttle')
    .select(sql<number>`ceil(extract(epoch from (dtlocked_until - now())))`.as('seconds'))
    .where('txkey', '=', key)
    .where('dtlocked_until', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row ? Math.max(1, Number(row.seconds)) : 0;
}

/** Counts one failure atomically (one upsert) and locks the key when the rule's limit is reached. */
export async function recordFailure(db: Db, key: string, rule: ThrottleRule): Promise<void> {
  const windowS = rule.windowMs / 1000;
  const lockS = rule.lockMs / 1000;
  const windowExpired = sql`chatbot_schema.login_throttle.dtwindow_start < now() - make_interval(secs => ${windowS})`;
  const nextCount = sql<number>`CASE WHEN ${windowExpired} THEN 1 ELSE chatbot_schema.login_throttle.nfailures + 1 END`;
  await db
    .insertInto('chatbot_schema.login_throttle')
    .values({
      txkey: key,
      nfailures: 1,
      dtwindow_start: sql`now()`,
      dtlocked_until: rule.maxFailures <= 1 ? sql`now() + make_interval(secs => ${lockS})` : null,
    })
    .onConflict((oc) =>
      oc.column('txkey').doUpdateSet({
        nfailures: nextCount,
        dtwindow_start: sql`CASE WHEN ${windowExpired} THEN now() ELSE chatbot_schema.login_throttle.dtwindow_start END`,
        dtlocked_until: sql`CASE WHEN ${nextCount} >= ${rule.maxFailures} THEN now() + make_interval(secs => ${lockS})
                                 ELSE chatbot_schema.login_throttle.dtlocked_until END`,
      }),
    )
    .execute();
}

export async function clearFailures(db: Db, key: string): Promise<void> {
  await db.deleteFrom('chatbot_schema.login_throttle').where('txkey', '=', key).execute();
}
