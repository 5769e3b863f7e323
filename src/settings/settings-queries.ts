import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export interface OwnSession {
  /** The session row's key (the SHA-256 of the cookie token, never the token): enough to name it, useless to sign in. */
  id: string;
  userAgent: string | null;
  ip: string | null;
  method: string;
  created: Date;
  lastSeen: Date;
}

/** The user's complete, unexpired sessions, newest first. Pending sign-ins are not listed (they cannot do anything). */
export async function listOwnSessions(db: Db, userId: number): Promise<OwnSession[]> {
  return db
    .selectFrom('chatbot_schema.session')
    .select(['idsession as id', 'txuser_agent as userAgent', 'txip as ip', 'txsign_in_method as method', 'dtcreated as created', 'dtlast_seen as lastSeen'])
    .where('idappuser', '=', userId)
    .where('is_second_factor_pending', '=', false)
    .where('dtexpires', '>', sql<Date>`now()`)
    .orderBy('dtlast_seen', 'desc')
    .execute();
}

/** Ends one of the user's own sessions; the WHERE on the owner makes another user's id a no-op. */
export async function revokeOwnSession(db: Db, userId: number, sessionId: string): Promise<boolean> {
  const result = await db.deleteFrom('chatbot_schema.session').where('idsession', '=', sessionId).where('idappuser', '=', userId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** "Sign out everywhere else", and what a password change does: every session of the user but this one ends. */
export async function revokeOtherSessions(db: Db, userId: number, keepSessionId: string): Promise<number> {
  const result = await db.deleteFrom('chatbot_schema.session').where('idappuser', '=', userId).where('idsession', '<>', keepSessionId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function setDisplayName(db: Db, userId: number, username: string): Promise<void> {
  await db.updateTable('chatbot_schema.app_user').set({ txusername: username }).where('idappuser', '=', userId).execute();
}

/** The new password hash, and every other session ended, in one transaction. */
export async function changePassword(db: Db, userId: number, passwordHash: string, keepSessionId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('chatbot_schema.app_user').set({ password: passwordHash }).where('idappuser', '=', userId).execute();
    await revokeOtherSessions(trx, userId, keepSessionId);
  });
}

/**
 * A first password for an account that has none (Google only), and every other session ended, in one transaction.
 * The update is guarded on "no password yet", so it never replaces one without the current password. Returns whether it set it.
 */
export async function setFirstPassword(db: Db, userId: number, passwordHash: string, keepSessionId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const set = await trx
      .updateTable('chatbot_schema.app_user')
      .set({ password: passwordHash })
      .where('idappuser', '=', userId)
      .where((eb) => eb.or([eb('password', 'is', null), eb('password', '=', '')]))
      .executeTakeFirst();
    if (Number(set.numUpdatedRows) === 0) return false;
    await revokeOtherSessions(trx, userId, keepSessionId);
    return true;
  });
}
