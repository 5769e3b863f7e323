import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ThrottleKind } from '../metrics/metrics.ts';
import { normalizeEmail } from '../users/user-queries.ts';

export interface ThrottleRule {
  /** Attempts allowed within the window; the last one allowed also locks the key until it is cleared or released. */
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

/** The key one account's password attempts count under, wherever a password is checked (sign-in, link, Settings, step-up). */
export const passwordThrottleKey = (email: string): string => `pw:${normalizeEmail(email)}`;

/** Contract: 10 failed passwords for one account within 15 minutes lock its password sign-in for 15 minutes. */
export const ACCOUNT_PASSWORD_RULE: ThrottleRule = { maxFailures: 10, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
/** One address guessing across many accounts; generous, since offices share an address. */
export const IP_PASSWORD_RULE: ThrottleRule = { maxFailures: 50, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
/** Account creation from one address: new accounts and "this e-mail is taken" answers both count. */
export const IP_REGISTRATION_RULE: ThrottleRule = { maxFailures: 20, windowMs: 60 * 60_000, lockMs: 60 * 60_000 };

/**
 * Wrong API keys from one address (src/api): like wrong passwords, a lock after a burst. Per address, since a wrong
 * key names no account; generous, since a team behind one address may run many scripts, one of them with an old key.
 */
export const API_KEY_ADDRESS_RULE: ThrottleRule = { maxFailures: 20, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
export const apiKeyThrottleKey = (ip: string): string => `apikey:${ip}`;

/**
 * Counters live in the database (login_throttle), so a lock holds across app processes and restarts.
 * Keys are namespaced strings such as `pw:alice@example.com` or `ip:203.0.113.9`.
 *
 * An attempt is RESERVED before the slow work (argon2) and counted as a failure from that moment: checking a lock,
 * verifying, then counting let 30 parallel guesses all through. The decision is one statement: the upsert only
 * updates (and returns) the row when the key is not locked, so of any number of attempts arriving at once, at most
 * `maxFailures` per window are granted. Success then clears the key (the account's) or gives the reservation back
 * (an address's, where successful sign-ins of colleagues must not add up to a lock).
 */
export async function reserveAttempt(db: Db, key: string, rule: ThrottleRule): Promise<Reservation> {
  const windowS = rule.windowMs / 1000;
  const lockS = rule.lockMs / 1000;
  const windowExpired = sql`t.dtwindow_start < now() - make_interval(secs => ${windowS})`;
  const nextCount = sql<number>`CASE WHEN ${windowExpired} THEN 1 ELSE t.nfailures + 1 END`;
  const reserved = await sql<{ nfailures: number }>`
    INSERT INTO chatbot_schema.login_throttle AS t (txkey, nfailures, dtwindow_start, dtlocked_until)
    VALUES (${key}, 1, now(), CASE WHEN 1 >= ${rule.maxFailures} THEN now() + make_interval(secs => ${lockS}) END)
    ON CONFLICT (txkey) DO UPDATE SET
      nfailures = ${nextCount},
      dtwindow_start = CASE WHEN ${windowExpired} THEN now() ELSE t.dtwindow_start END,
      dtlocked_until = CASE WHEN ${nextCount} >= ${rule.maxFailures} THEN now() + make_interval(secs => ${lockS}) END
    WHERE t.dtlocked_until IS NULL OR t.dtlocked_until <= now()
    RETURNING t.nfailures`.execute(db);
  if (reserved.rows.length > 0) return { granted: true };
  return { granted: false, retryAfterS: Math.max(1, await secondsLocked(db, key)), kind: throttleKind(key) };
}

/** A refusal names which throttle locked the attempt (for /metrics), `kind` of the key that was locked. */
export type Reservation = { granted: true } | { granted: false; retryAfterS: number; kind: ThrottleKind };

/** The kind of throttle a key counts for, from its namespace. */
export function throttleKind(key: string): ThrottleKind {
  if (key.startsWith('ip:')) return 'password_address';
  if (key.startsWith('reg:')) return 'registration_address';
  if (key.startsWith('totp:')) return 'second_factor';
  if (key.startsWith('apikey:')) return 'api_key_address';
  return 'password_account';
}

/**
 * Reserves one attempt under each rule, in order; when one is refused, the reservations already made are given
 * back, so a request refused by the address's lock does not also count against the account.
 */
export async function reserveAttempts(db: Db, keys: Array<[key: string, rule: ThrottleRule]>): Promise<Reservation> {
  const made: Array<[string, ThrottleRule]> = [];
  for (const [key, rule] of keys) {
    const result = await reserveAttempt(db, key, rule);
    if (!result.granted) {
      for (const [k, r] of made) await releaseAttempt(db, k, r);
      return result;
    }
    made.push([key, rule]);
  }
  return { granted: true };
}

/** Gives one reservation back (the attempt succeeded); a lock that only this reservation completed is lifted. */
export async function releaseAttempt(db: Db, key: string, rule: ThrottleRule): Promise<void> {
  await sql`
    UPDATE chatbot_schema.login_throttle AS t SET
      nfailures = greatest(t.nfailures - 1, 0),
      dtlocked_until = CASE WHEN t.nfailures - 1 < ${rule.maxFailures} THEN NULL ELSE t.dtlocked_until END
    WHERE t.txkey = ${key}`.execute(db);
}

/** Seconds until the key's lock ends; 0 when it is not locked. */
export async function secondsLocked(db: Db, key: string): Promise<number> {
  const row = await db
    .selectFrom('chatbot_schema.login_throttle')
    .select(sql<number>`ceil(extract(epoch from (dtlocked_until - now())))`.as('seconds'))
    .where('txkey', '=', key)
    .where('dtlocked_until', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row ? Math.max(1, Number(row.seconds)) : 0;
}

export async function clearFailures(db: Db, key: string): Promise<void> {
  await db.deleteFrom('chatbot_schema.login_throttle').where('txkey', '=', key).execute();
}
