import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/** How many passkeys one account may have: enough for a phone, a laptop and keys in a drawer; a bound on the list. */
export const PASSKEYS_PER_ACCOUNT = 10;
/** A passkey's name as people type it ("Work laptop"). */
export const PASSKEY_NAME_MAX_CHARS = 60;

export interface PasskeyListItem {
  id: number;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** Backed up (synced to other devices by the platform), else bound to the device that made it. */
  synced: boolean;
}

export interface StoredPasskey {
  id: number;
  userId: number;
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  name: string;
  /** The owner's WebAuthn user handle. */
  userHandle: string | null;
}

export async function listPasskeys(db: Db, userId: number): Promise<PasskeyListItem[]> {
  const rows = await db
    .selectFrom('chatbot_schema.passkey')
    .select(['idpasskey as id', 'txname as name', 'dtcreated as createdAt', 'dtlast_used as lastUsedAt', 'is_backed_up as synced'])
    .where('idappuser', '=', userId)
    .orderBy('idpasskey')
    .execute();
  return rows.map((r) => ({ ...r, lastUsedAt: r.lastUsedAt ? new Date(r.lastUsedAt) : null }));
}

/** What registration needs: the credentials to exclude (one authenticator is not registered twice). */
export async function credentialsOf(db: Db, userId: number): Promise<Array<{ id: string; transports: string[] }>> {
  const rows = await db
    .selectFrom('chatbot_schema.passkey')
    .select(['txcredential_id as id', 'txtransports as transports'])
    .where('idappuser', '=', userId)
    .execute();
  return rows.map((r) => ({ id: r.id, transports: splitTransports(r.transports) }));
}

export async function countPasskeys(db: Db, userId: number): Promise<number> {
  const row = await db
    .selectFrom('chatbot_schema.passkey')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('idappuser', '=', userId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * The account's WebAuthn user handle, made on first use: 32 random bytes, never the id or e-mail (authenticators
 * store it and may show it). One statement keeps the first one written when two registrations start at once.
 */
export async function userHandleOf(db: Db, userId: number): Promise<string> {
  const fresh = randomBytes(32).toString('base64url');
  const row = await db
    .updateTable('chatbot_schema.app_user')
    .set({ txwebauthn_user_id: sql<string>`coalesce(txwebauthn_user_id, ${fresh})` })
    .where('idappuser', '=', userId)
    .returning('txwebauthn_user_id as handle')
    .executeTakeFirstOrThrow();
  return row.handle ?? fresh;
}

export interface NewPasskey {
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  name: string;
  backupEligible: boolean;
  backedUp: boolean;
}

export type AddOutcome = 'added' | 'limit' | 'duplicate';

/**
 * Adds a verified credential, unless the account already has PASSKEYS_PER_ACCOUNT (decided in the INSERT … SELECT,
 * under a lock on the owner's row, so parallel registrations cannot pass the limit together) or the credential is
 * registered already (its id is unique across accounts).
 */
export async function addPasskey(db: Db, userId: number, p: NewPasskey): Promise<AddOutcome> {
  return db.transaction().execute(async (trx) => {
    await trx.selectFrom('chatbot_schema.app_user').select('idappuser').where('idappuser', '=', userId).forUpdate().execute();
    const inserted = await sql<{ idpasskey: number }>`
      INSERT INTO chatbot_schema.passkey
        (idappuser, txcredential_id, txpublic_key, ncounter, txtransports, txname, is_backup_eligible, is_backed_up)
      SELECT ${userId}, ${p.credentialId}, ${p.publicKey}, ${p.counter}, ${p.transports.join(',')}, ${p.name}, ${p.backupEligible}, ${p.backedUp}
      WHERE (SELECT count(*) FROM chatbot_schema.passkey WHERE idappuser = ${userId}) < ${PASSKEYS_PER_ACCOUNT}
      ON CONFLICT (txcredential_id) DO NOTHING
      RETURNING idpasskey`.execute(trx);
    if (inserted.rows.length > 0) return 'added';
    const taken = await trx.selectFrom('chatbot_schema.passkey').select('idpasskey').where('txcredential_id', '=', p.credentialId).executeTakeFirst();
    return taken ? 'duplicate' : 'limit';
  });
}

/** The credential an assertion names, with its owner's user handle; undefined when no account has it. */
export async function findPasskey(db: Db, credentialId: string): Promise<StoredPasskey | undefined> {
  const row = await db
    .selectFrom('chatbot_schema.passkey as p')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'p.idappuser')
    .select([
      'p.idpasskey as id',
      'p.idappuser as userId',
      'p.txcredential_id as credentialId',
      'p.txpublic_key as publicKey',
      'p.ncounter as counter',
      'p.txtransports as transports',
      'p.txname as name',
      'u.txwebauthn_user_id as userHandle',
    ])
    .where('p.txcredential_id', '=', credentialId)
    .executeTakeFirst();
  return row && { ...row, counter: Number(row.counter), transports: splitTransports(row.transports) };
}

/**
 * Records a verified assertion: the new counter and the time, only if the counter went up, or both are zero (an
 * authenticator that keeps no counter, as synced passkeys do). One guarded UPDATE decides, so of two assertions
 * replayed at once with the same counter only one passes. False: the counter did not go up (a possible clone).
 */
export async function recordPasskeyUse(db: Db, passkeyId: number, newCounter: number, backedUp: boolean): Promise<boolean> {
  const result = await db
    .updateTable('chatbot_schema.passkey')
    .set({ ncounter: newCounter, dtlast_used: sql`now()`, is_backed_up: backedUp })
    .where('idpasskey', '=', passkeyId)
    .where((eb) => eb.or([eb('ncounter', '<', newCounter), eb.and([eb('ncounter', '=', 0), eb(sql.lit(newCounter), '=', 0)])]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Renames one of the account's own passkeys; false when it has no such passkey. */
export async function renamePasskey(db: Db, userId: number, passkeyId: number, name: string): Promise<boolean> {
  const r = await db
    .updateTable('chatbot_schema.passkey')
    .set({ txname: name })
    .where('idpasskey', '=', passkeyId)
    .where('idappuser', '=', userId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Removes one of the account's own passkeys; its name, or undefined when it has no such passkey. */
export async function removePasskey(db: Db, userId: number, passkeyId: number): Promise<string | undefined> {
  const row = await db
    .deleteFrom('chatbot_schema.passkey')
    .where('idpasskey', '=', passkeyId)
    .where('idappuser', '=', userId)
    .returning('txname')
    .executeTakeFirst();
  return row?.txname;
}

/** Every passkey of the account (an administrator's removal, a 2FA reset); how many there were. */
export async function removeAllPasskeys(db: Db, userId: number): Promise<number> {
  const r = await db.deleteFrom('chatbot_schema.passkey').where('idappuser', '=', userId).executeTakeFirst();
  return Number(r.numDeletedRows);
}

function splitTransports(value: string): string[] {
  return value.split(',').filter(Boolean);
}
