import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import { ADMIN_ROLE_ID } from '../users/user-queries.ts';
import { likeSubstring } from './user-list-queries.ts';

/** Who acted, as the route knows them: the signed-in admin and the request's address. */
export interface AuditActor {
  id: number;
  username: string;
  ip: string | null;
}

export interface AuditTarget {
  id: number;
  username: string;
}

export const AUDIT_PER_PAGE = 50;

/** Every action an admin can take that is recorded; the audit page filters by these. */
export const AUDIT_ACTIONS = [
  'promote',
  'demote',
  'deactivate',
  'reactivate',
  'sign-out-everywhere',
  'revoke-session',
  'reset-2fa',
  'create-reset-link',
  'create-user',
  'create-model',
  'update-model',
  'enable-model',
  'disable-model',
  'delete-model',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRow {
  id: number;
  at: Date;
  actorId: number | null;
  /** The name when the row was written (a snapshot: it reads right after a rename). */
  actor: string;
  /** The account's name now, or null when the account no longer exists. */
  actorNow: string | null;
  targetId: number | null;
  target: string | null;
  targetNow: string | null;
  action: string;
  /** Whatever JSON the row holds: rows written by older versions or adopted databases may hold anything. */
  details: unknown;
  ip: string | null;
}

export interface AuditQuery {
  actorId?: number;
  targetId?: number;
  action?: string;
  page: number;
}

/**
 * One row per target, in the caller's transaction (`db` is the transaction): the change and its record commit
 * together or not at all. Names are copied so a row still reads right if the account is renamed later. An action on
 * several users at once (the bulk actions) says so in each row, since each row names only its own user.
 */
export async function writeAudit(
  db: Kysely<Database>,
  actor: AuditActor,
  action: AuditAction,
  targets: AuditTarget[] | null,
  details: Record<string, unknown>,
): Promise<void> {
  const all = targets !== null && targets.length > 1 ? { ...details, bulk: targets.length } : details;
  const base = { idactor: actor.id, txactor: actor.username, txaction: action, jsdetails: JSON.stringify(all), txip: actor.ip };
  const rows = targets === null ? [{ ...base, idtarget: null, txtarget: null }] : targets.map((t) => ({ ...base, idtarget: t.id, txtarget: t.username }));
  if (rows.length > 0) await db.insertInto('chatbot_schema.admin_audit').values(rows).execute();
}

/**
 * Newest first, by the primary key (ids grow with time; the key's index serves the order and the page). The accounts'
 * current names come along (two primary-key lookups a row) so a renamed account reads under today's name.
 */
export async function listAudit(db: Kysely<Database>, query: AuditQuery, limit = AUDIT_PER_PAGE): Promise<{ rows: AuditRow[]; hasMore: boolean }> {
  let q = db
    .selectFrom('chatbot_schema.admin_audit as a')
    .leftJoin('chatbot_schema.app_user as ua', 'ua.idappuser', 'a.idactor')
    .leftJoin('chatbot_schema.app_user as ut', 'ut.idappuser', 'a.idtarget')
    .select([
      'a.idaudit as id',
      'a.dtcreated as at',
      'a.idactor as actorId',
      'a.txactor as actor',
      'ua.txusername as actorNow',
      'a.idtarget as targetId',
      'a.txtarget as target',
      'ut.txusername as targetNow',
      'a.txaction as action',
      'a.jsdetails as details',
      'a.txip as ip',
    ])
    .orderBy('a.idaudit', 'desc')
    .limit(limit + 1)
    .offset((query.page - 1) * limit);
  if (query.actorId !== undefined) q = q.where('a.idactor', '=', query.actorId);
  if (query.targetId !== undefined) q = q.where('a.idtarget', '=', query.targetId);
  if (query.action !== undefined) q = q.where('a.txaction', '=', query.action);
  const rows = await q.execute();
  return { rows: rows.slice(0, limit).map((r) => ({ ...r, id: Number(r.id), details: r.details as unknown })), hasMore: rows.length > limit };
}

export interface AccountRef {
  id: number;
  username: string;
  email: string;
}

/** How many candidates a search shows when a name is ambiguous. */
const CANDIDATES_SHOWN = 5;

/**
 * The accounts a filter's text may mean: an exact username or e-mail (ignoring case) first, then any account whose
 * username or e-mail contains the text. The caller decides: one account is the filter, several need more typing.
 * lower(...) LIKE uses migration 010's trigram indexes (three characters or more), as the user list's search does.
 */
export async function findAccounts(db: Kysely<Database>, text: string): Promise<{ exact: AccountRef[]; partial: AccountRef[]; partialCount: number }> {
  const needle = text.toLowerCase();
  const exact = await db
    .selectFrom('chatbot_schema.app_user as u')
    .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
    // E-mail: the unique lower(txemail) index; username: LIKE without wildcards, which the trigram index serves.
    .where((eb) => eb.or([eb(sql<string>`lower(u.txemail)`, '=', needle), eb(sql<string>`lower(u.txusername)`, 'like', likeSubstring(text).slice(1, -1))]))
    .orderBy('u.idappuser')
    .limit(CANDIDATES_SHOWN + 1)
    .execute();
  if (exact.length > 0) return { exact, partial: [], partialCount: 0 };
  const pattern = likeSubstring(text);
  const partial = await db
    .selectFrom('chatbot_schema.app_user as u')
    .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
    .where((eb) => eb.or([eb(sql<string>`lower(u.txusername)`, 'like', pattern), eb(sql<string>`lower(u.txemail)`, 'like', pattern)]))
    .orderBy('u.txusername')
    .orderBy('u.idappuser')
    .limit(CANDIDATES_SHOWN + 1)
    .execute();
  return { exact: [], partial: partial.slice(0, CANDIDATES_SHOWN), partialCount: partial.length };
}

export async function findAccountById(db: Kysely<Database>, id: number): Promise<AccountRef | undefined> {
  return db
    .selectFrom('chatbot_schema.app_user as u')
    .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
    .where('u.idappuser', '=', id)
    .executeTakeFirst();
}

/** Autocomplete looks this far back: a bounded read of the newest rows, whatever the size of the log. */
const SUGGEST_FROM_ROWS = 2000;

/**
 * Who the filters' suggestions offer: the admins and users named in the newest rows of the log (plus today's admins,
 * who may not have acted yet), existing accounts only, by name.
 */
export async function suggestPeople(db: Kysely<Database>): Promise<{ admins: AccountRef[]; users: AccountRef[] }> {
  const recent = db.selectFrom('chatbot_schema.admin_audit').select(['idactor', 'idtarget']).orderBy('idaudit', 'desc').limit(SUGGEST_FROM_ROWS).as('r');
  const people = (column: 'r.idactor' | 'r.idtarget') =>
    db
      .selectFrom('chatbot_schema.app_user as u')
      .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
      .where((eb) => {
        const named = eb.exists(eb.selectFrom(recent).select(column).whereRef(column, '=', 'u.idappuser'));
        if (column === 'r.idtarget') return named;
        const isAdmin = eb.exists(
          eb
            .selectFrom('chatbot_schema.user_role as ur')
            .select('ur.idrole')
            .whereRef('ur.idappuser', '=', 'u.idappuser')
            .where('ur.idrole', '=', ADMIN_ROLE_ID),
        );
        return eb.or([named, isAdmin]);
      })
      .orderBy('u.txusername')
      .orderBy('u.idappuser')
      .limit(SUGGEST_FROM_ROWS)
      .execute();
  const [admins, users] = await Promise.all([people('r.idactor'), people('r.idtarget')]);
  return { admins, users };
}
