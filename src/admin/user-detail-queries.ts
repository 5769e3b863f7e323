import { sql } from 'kysely';
import { generateToken, sha256Hex } from '../crypto/tokens.ts';
import type { Db } from '../db/database.ts';
import { ConflictError, NotFoundError } from '../http/errors.ts';
import { type AuditActor, type AuditAuthor, writeAudit } from './audit-queries.ts';
import { userSummaryColumns } from './user-list-queries.ts';

/** A reset link works for an hour: long enough to hand it over in a chat, short enough that a forgotten one dies. */
export const RESET_LINK_TTL_MS = 60 * 60 * 1000;

export interface UserDetail {
  id: number;
  username: string;
  email: string;
  isActive: boolean;
  isAdmin: boolean;
  roles: string[];
  is2faEnabled: boolean;
  /** How many passkeys the account has (a second factor, like TOTP). */
  passkeys: number;
  hasPassword: boolean;
  googleIdentities: { email: string | null; created: Date; lastUsed: Date | null }[];
  created: Date;
  lastSignIn: Date | null;
  prompts: number;
}

export interface SessionRow {
  id: string;
  created: Date;
  lastSeen: Date;
  userAgent: string | null;
  ip: string | null;
  method: string;
  pending: boolean;
}

export interface UsageRow {
  model: string;
  /** 'web' (chat pages) or 'api' (personal API keys). */
  source: 'web' | 'api';
  prompts: number;
  answers: number;
  /** Prompt and completion tokens (a bigint's text). */
  tokens: string;
}

export async function findUserDetail(db: Db, id: number): Promise<UserDetail | undefined> {
  const row = await db
    .selectFrom('chatbot_schema.app_user as u')
    .select((eb) => [
      ...userSummaryColumns(eb),
      sql<
        UserDetail['googleIdentities']
      >`COALESCE((SELECT json_agg(json_build_object('email', i.txemail, 'created', i.dtcreated, 'lastUsed', i.dtlast_used) ORDER BY i.dtcreated)
        FROM chatbot_schema.oauth_identity i WHERE i.idappuser = u.idappuser), '[]'::json)`.as('googleIdentities'),
    ])
    .where('u.idappuser', '=', id)
    .executeTakeFirst();
  if (!row) return undefined;
  const googleIdentities = row.googleIdentities.map((g) => ({
    email: g.email,
    created: new Date(g.created),
    lastUsed: g.lastUsed === null ? null : new Date(g.lastUsed),
  }));
  return { ...row, googleIdentities, isAdmin: row.roles.includes('Admin') };
}

export async function listUserSessions(db: Db, userId: number): Promise<SessionRow[]> {
  return db
    .selectFrom('chatbot_schema.session')
    .select([
      'idsession as id',
      'dtcreated as created',
      'dtlast_seen as lastSeen',
      'txuser_agent as userAgent',
      'txip as ip',
      'txsign_in_method as method',
      'is_second_factor_pending as pending',
    ])
    .where('idappuser', '=', userId)
    .where('dtexpires', '>', sql<Date>`now()`)
    .orderBy('dtlast_seen', 'desc')
    .limit(100)
    .execute();
}

/** Prompts and answers by model in the last 30 days: a plain query for now (the statistics rollups can serve it later). */
export async function usageLast30Days(db: Db, userId: number): Promise<UsageRow[]> {
  // The rollups (decision record 006), by source (migration 019): today and the 29 days before, in STATS_TIMEZONE.
  const { rows } = await sql<UsageRow>`
    SELECT coalesce(l.txshortname, '(deleted model)') AS model, d.txsource AS source, sum(d.nprompts)::int AS prompts, sum(d.nresponses)::int AS answers,
      sum(d.nprompt_tokens + d.ncompletion_tokens)::text AS tokens
    FROM chatbot_schema.usage_day_user d LEFT JOIN chatbot_schema.llm l ON l.idllm = d.idllm
    WHERE d.idappuser = ${userId} AND d.dday > chatbot_schema.usage_day(now()) - 30
    GROUP BY 1, 2 ORDER BY prompts DESC, model, source DESC`.execute(db);
  return rows;
}

export async function revokeSession(db: Db, actor: AuditActor, userId: number, sessionId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const target = await trx
      .selectFrom('chatbot_schema.app_user')
      .select(['idappuser as id', 'txusername as username'])
      .where('idappuser', '=', userId)
      .executeTakeFirst();
    if (!target) throw new NotFoundError('This user does not exist.');
    const deleted = await trx.deleteFrom('chatbot_schema.session').where('idsession', '=', sessionId).where('idappuser', '=', userId).executeTakeFirst();
    if (Number(deleted.numDeletedRows) === 0) return false;
    await writeAudit(trx, actor, 'revoke-session', [target], {});
    return true;
  });
}

/**
 * A one-time reset link: the token goes to the admin once, only its SHA-256 is stored. Earlier unused links of the
 * user are voided, so only the newest one works.
 */
export async function createResetLink(db: Db, actor: AuditAuthor, userId: number): Promise<string> {
  return db.transaction().execute(async (trx) => {
    const target = await trx
      .selectFrom('chatbot_schema.app_user')
      .select(['idappuser as id', 'txusername as username'])
      .where('idappuser', '=', userId)
      .executeTakeFirst();
    if (!target) throw new NotFoundError('This user does not exist.');
    const token = generateToken();
    await trx.deleteFrom('chatbot_schema.password_reset').where('idappuser', '=', userId).where('dtused', 'is', null).execute();
    await trx
      .insertInto('chatbot_schema.password_reset')
      .values({ idtoken: sha256Hex(token), idappuser: userId, dtexpires: new Date(Date.now() + RESET_LINK_TTL_MS) })
      .execute();
    await writeAudit(trx, actor, 'create-reset-link', [target], { validMinutes: RESET_LINK_TTL_MS / 60_000 });
    return token;
  });
}

/** The account a reset token opens, if the token is unused, unexpired, and its account active. */
export async function findResetTarget(db: Db, token: string): Promise<{ userId: number; username: string } | undefined> {
  return db
    .selectFrom('chatbot_schema.password_reset as p')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'p.idappuser')
    .select(['u.idappuser as userId', 'u.txusername as username'])
    .where('p.idtoken', '=', sha256Hex(token))
    .where('p.dtused', 'is', null)
    .where('p.dtexpires', '>', sql<Date>`now()`)
    .where('u.is_active', '=', true)
    .executeTakeFirst();
}

/**
 * Uses a reset token: marked used by one guarded UPDATE (two tabs submitting at once: one wins), the password set,
 * and every session of the account ended, in one transaction. Returns false when the link no longer works.
 */
export async function useResetLink(db: Db, token: string, passwordHash: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const used = await trx
      .updateTable('chatbot_schema.password_reset as p')
      .set({ dtused: sql`now()` })
      .where('p.idtoken', '=', sha256Hex(token))
      .where('p.dtused', 'is', null)
      .where('p.dtexpires', '>', sql<Date>`now()`)
      .returning('p.idappuser')
      .executeTakeFirst();
    if (!used) return false;
    const active = await trx
      .updateTable('chatbot_schema.app_user')
      .set({ password: passwordHash })
      .where('idappuser', '=', used.idappuser)
      .where('is_active', '=', true)
      .executeTakeFirst();
    if (Number(active.numUpdatedRows) === 0) throw new ConflictError('This account is deactivated: the link does not work.');
    await trx.deleteFrom('chatbot_schema.session').where('idappuser', '=', used.idappuser).execute();
    return true;
  });
}
