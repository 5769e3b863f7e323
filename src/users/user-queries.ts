import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';

export const ADMIN_ROLE_ID = 1;
export const USER_ROLE_ID = 2;

export interface UserRecord {
  id: number;
  username: string;
  email: string;
  passwordHash: string | null;
  isActive: boolean;
  is2faEnabled: boolean;
  /** The account has a passkey (a second factor, like TOTP). */
  hasPasskey: boolean;
}

const userColumns = [
  'idappuser as id',
  'txusername as username',
  'txemail as email',
  'password as passwordHash',
  'is_active as isActive',
  'is_2fa_enabled as is2faEnabled',
  sql<boolean>`exists (select 1 from chatbot_schema.passkey p where p.idappuser = chatbot_schema.app_user.idappuser)`.as('hasPasskey'),
] as const;

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRecord | undefined> {
  return db
    .selectFrom('chatbot_schema.app_user')
    .select(userColumns)
    .where(sql<string>`lower(txemail)`, '=', normalizeEmail(email))
    .orderBy('idappuser')
    .executeTakeFirst();
}

export async function findUserById(db: Db, id: number): Promise<UserRecord | undefined> {
  return db.selectFrom('chatbot_schema.app_user').select(userColumns).where('idappuser', '=', id).executeTakeFirst();
}

/** `name`, or `name 2`, `name 3`…: names are not unique in the schema, but two "Alice"s in a user list confuse people. */
export async function uniqueUsername(db: Db, wanted: string): Promise<string> {
  // Cut by code points: a UTF-16 cut through an emoji leaves a lone surrogate, which is stored as U+FFFD.
  const base = [...wanted.trim()].slice(0, 90).join('') || 'user';
  const taken = await db
    .selectFrom('chatbot_schema.app_user')
    .select('txusername')
    .where(sql<string>`lower(txusername)`, 'like', `${base.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`)
    .execute();
  const names = new Set(taken.map((r) => r.txusername.toLowerCase()));
  if (!names.has(base.toLowerCase())) return base;
  for (let n = 2; ; n++) if (!names.has(`${base} ${n}`.toLowerCase())) return `${base} ${n}`;
}

/**
 * Moves the account to a new address unless another account has it (then nothing changes and false is returned).
 * Under the same per-address advisory lock as createUser, so a sign-up of that address cannot slip in between.
 */
export async function changeEmailIfFree(db: Db, userId: number, newEmail: string): Promise<boolean> {
  const email = normalizeEmail(newEmail);
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${FIRST_ACCOUNT_LOCK}, hashtext(${email}))`.execute(trx);
    const moved = await trx
      .updateTable('chatbot_schema.app_user')
      .set({ txemail: email })
      .where('idappuser', '=', userId)
      .where(sql<string>`lower(txemail)`, '<>', email)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('chatbot_schema.app_user as other').select('other.idappuser').where(sql<string>`lower(other.txemail)`, '=', email))),
      )
      .executeTakeFirst();
    return Number(moved.numUpdatedRows) > 0;
  });
}

export class EmailTakenError extends Error {}

/** Any fixed number: the key of the transaction-scoped advisory lock that makes "the first account" exact. */
const FIRST_ACCOUNT_LOCK = 0x7061726c; // 'parl'

/**
 * Creates an account with role User, plus Admin when it is the first account ever, whichever way it signs up.
 * "First" is decided by EXISTS under a transaction-scoped advisory lock, taken only while the table looks empty:
 * twenty simultaneous first registrations produce one Admin, and on a server with users nothing is serialized
 * (the table lock this replaces blocked every sign-in's write while any registration ran).
 */
export async function createUser(
  db: Db,
  input: { username: string; email: string; passwordHash: string | null },
  /** Runs in the same transaction once the account exists (Google: the identity row), so both commit or neither. */
  alsoInTransaction?: (trx: Transaction<Database>, userId: number) => Promise<void>,
): Promise<{ id: number; isAdmin: boolean }> {
  const email = normalizeEmail(input.email);
  return db.transaction().execute(async (trx) => {
    const anyUser = () =>
      trx.selectNoFrom((eb) => eb.exists(eb.selectFrom('chatbot_schema.app_user').select('idappuser')).as('found')).executeTakeFirstOrThrow();
    let isAdmin = false;
    if (!(await anyUser()).found) {
      await sql`SELECT pg_advisory_xact_lock(${FIRST_ACCOUNT_LOCK})`.execute(trx);
      // Read again under the lock: READ COMMITTED gives this statement a snapshot that sees the holder's commit.
      isAdmin = !(await anyUser()).found;
    }
    // Same-address sign-ups queue here, so the check below holds even on an adopted database whose case-duplicate
    // e-mails kept the unique index on lower(txemail) from being built.
    await sql`SELECT pg_advisory_xact_lock(${FIRST_ACCOUNT_LOCK}, hashtext(${email}))`.execute(trx);
    const taken = await trx.selectFrom('chatbot_schema.app_user').select('idappuser').where(sql<string>`lower(txemail)`, '=', email).executeTakeFirst();
    if (taken) throw new EmailTakenError('email taken');
    const { idappuser } = await trx
      .insertInto('chatbot_schema.app_user')
      .values({ txusername: input.username, txemail: email, password: input.passwordHash })
      .returning('idappuser')
      .executeTakeFirstOrThrow();
    const roles = isAdmin ? [ADMIN_ROLE_ID, USER_ROLE_ID] : [USER_ROLE_ID];
    await trx
      .insertInto('chatbot_schema.user_role')
      .values(roles.map((idrole) => ({ idappuser, idrole })))
      .execute();
    if (alsoInTransaction) await alsoInTransaction(trx, idappuser);
    return { id: idappuser, isAdmin };
  });
}

export async function setPasswordHash(db: Db, userId: number, passwordHash: string): Promise<void> {
  await db.updateTable('chatbot_schema.app_user').set({ password: passwordHash }).where('idappuser', '=', userId).execute();
}

export async function recordSignIn(db: Db, userId: number): Promise<void> {
  await db.updateTable('chatbot_schema.app_user').set({ dtlast_login: sql`now()` }).where('idappuser', '=', userId).execute();
}

export async function grantAdmin(db: Db, userId: number): Promise<void> {
  await db
    .insertInto('chatbot_schema.user_role')
    .values({ idappuser: userId, idrole: ADMIN_ROLE_ID })
    .onConflict((oc) => oc.columns(['idappuser', 'idrole']).doNothing())
    .execute();
}
