import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';

/** An account's identity at an OpenID Connect provider, keyed by (issuer, subject) — never by e-mail. */
export interface IdentityKey {
  issuer: string;
  subject: string;
}

export interface LinkedIdentity extends IdentityKey {
  email: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** The account this identity signs in to, with what completeSignIn needs. */
export async function findUserByIdentity(
  db: Db,
  key: IdentityKey,
): Promise<{ id: number; email: string; isActive: boolean; is2faEnabled: boolean; hasPasskey: boolean; identityEmail: string | null } | undefined> {
  return db
    .selectFrom('chatbot_schema.oauth_identity as i')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'i.idappuser')
    .select([
      'u.idappuser as id',
      'u.txemail as email',
      'u.is_active as isActive',
      'u.is_2fa_enabled as is2faEnabled',
      sql<boolean>`exists (select 1 from chatbot_schema.passkey p where p.idappuser = u.idappuser)`.as('hasPasskey'),
      'i.txemail as identityEmail',
    ])
    .where('i.txissuer', '=', key.issuer)
    .where('i.txsubject', '=', key.subject)
    .executeTakeFirst();
}

/**
 * Adds the identity to the account. `false` when the identity already belongs to an account (a concurrent first
 * sign-in got there first): the caller looks it up again instead of failing.
 */
export async function linkIdentity(db: Db | Transaction<Database>, userId: number, key: IdentityKey, email: string | null): Promise<boolean> {
  const inserted = await db
    .insertInto('chatbot_schema.oauth_identity')
    .values({ txissuer: key.issuer, txsubject: key.subject, idappuser: userId, txemail: email, dtlast_used: sql`now()` })
    .onConflict((oc) => oc.columns(['txissuer', 'txsubject']).doNothing())
    .returning('idappuser')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Records a sign-in with the identity and the address the provider gave this time. */
export async function touchIdentity(db: Db, key: IdentityKey, email: string | null): Promise<void> {
  await db
    .updateTable('chatbot_schema.oauth_identity')
    .set({ dtlast_used: sql`now()`, txemail: email })
    .where('txissuer', '=', key.issuer)
    .where('txsubject', '=', key.subject)
    .execute();
}

/** For the settings page: the identities linked to one account, oldest first. */
export async function listIdentities(db: Db, userId: number): Promise<LinkedIdentity[]> {
  return db
    .selectFrom('chatbot_schema.oauth_identity')
    .select(['txissuer as issuer', 'txsubject as subject', 'txemail as email', 'dtcreated as createdAt', 'dtlast_used as lastUsedAt'])
    .where('idappuser', '=', userId)
    .orderBy('dtcreated')
    .execute();
}

/**
 * For the settings page: removes the identity only when the account keeps a way in — a password. One statement, so a
 * password cleared at the same moment cannot leave the account with neither. `false`: nothing was removed.
 */
export async function unlinkIdentityIfPasswordSet(db: Db, userId: number, key: IdentityKey): Promise<boolean> {
  const removed = await db
    .deleteFrom('chatbot_schema.oauth_identity')
    .where('idappuser', '=', userId)
    .where('txissuer', '=', key.issuer)
    .where('txsubject', '=', key.subject)
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('chatbot_schema.app_user').select('idappuser').where('idappuser', '=', userId).where('password', 'is not', null).where('password', '<>', ''),
      ),
    )
    .executeTakeFirst();
  return Number(removed.numDeletedRows) > 0;
}

/**
 * An account an administrator made for this address without a password ("Google only") has no way in yet: the first
 * identity with that verified address claims it. Only while it has no password and no identity (the row locked, so
 * two identities cannot both claim it); an account someone has used is never taken over by e-mail. `false`: not claimed.
 */
export async function claimUnusedAccount(db: Db, userId: number, key: IdentityKey, email: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const user = await trx.selectFrom('chatbot_schema.app_user').select(['password']).where('idappuser', '=', userId).forUpdate().executeTakeFirst();
    if (!user || (user.password !== null && user.password !== '')) return false;
    const linked = await trx.selectFrom('chatbot_schema.oauth_identity').select('txsubject').where('idappuser', '=', userId).executeTakeFirst();
    if (linked) return false;
    return linkIdentity(trx, userId, key, email);
  });
}
