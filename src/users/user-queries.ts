import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export const ADMIN_ROLE_ID = 1;
export const USER_ROLE_ID = 2;

export interface UserRecord {
  id: number;
  username: string;
  email: string;
  passwordHash: string | null;
  isActive: boolean;
  is2faEnabled: boolean;
}

const userColumns = [
  'idappuser as id',
  'txusername as username',
  'txemail as email',
  'password as passwordHash',
  'is_active as isActive',
  'is_2fa_enabled as is2faEnabled',
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

export class EmailTakenError extends Error {}

/**
 * Creates an account with role User, plus Admin when it is the first account ever. The table lock makes
 * "first" exact under concurrency: twenty simultaneous first registrations produce one Admin.
 */
export async function createUser(db: Db, input: { username: string; email: string; passwordHash: string | null }): Promise<{ id: number; isAdmin: boolean }> {
  return db.transaction().execute(async (trx) => {
    await sql`LOCK TABLE chatbot_schema.app_user IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    const taken = await trx
      .selectFrom('chatbot_schema.app_user')
      .select('idappuser')
      .where(sql<string>`lower(txemail)`, '=', normalizeEmail(input.email))
      .executeTakeFirst();
    if (taken) throw new EmailTakenError('email taken');
    const { count } = await trx
      .selectFrom('chatbot_schema.app_user')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .executeTakeFirstOrThrow();
    const { idappuser } = await trx
      .insertInto('chatbot_schema.app_user')
      .values({ txusername: input.username, txemail: normalizeEmail(input.email), password: input.passwordHash })
      .returning('idappuser')
      .executeTakeFirstOrThrow();
    const isAdmin = Number(count) === 0;
    const roles = isAdmin ? [ADMIN_ROLE_ID, USER_ROLE_ID] : [USER_ROLE_ID];
    await trx
      .insertInto('chatbot_schema.user_role')
      .values(roles.map((idrole) => ({ idappuser, idrole })))
      .execute();
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
