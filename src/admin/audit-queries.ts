import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import { ADMIN_ROLE_ID } from '../users/user-queries.ts';
import { likeSubstring, TRIGRAM_LENGTH } from './user-list-queries.ts';

/** Who acted, as the route knows them: the signed-in admin and the request's address. */
export interface AuditActor {
  id: number;
  username: string;
  ip: string | null;
}

/** Who an audit row names: an admin, or no account (`id` null) for what the command line did. */
export type AuditAuthor = Omit<AuditActor, 'id'> & { id: number | null };

/** The author of what a command-line tool did: no account, named after the command. */
export const commandLineAuthor = (command: string): AuditAuthor => ({ id: null, username: `${COMMAND_LINE} (npm run ${command})`, ip: null });
const COMMAND_LINE = 'command line';
/** True for a name commandLineAuthor made (a row without an account that was never an account, not a removed one). */
export const isCommandLineName = (name: string | null): boolean => name?.startsWith(`${COMMAND_LINE} (npm run `) === true;

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
  'remove-passkeys',
  'passkey-counter-regressed',
  'create-reset-link',
  'create-user',
  'create-model',
  'update-model',
  'enable-model',
  'disable-model',
  'delete-model',
  'default-model',
  'model-access',
  'create-group',
  'update-group',
  'delete-group',
  'add-to-group',
  'remove-from-group',
  'group-limits',
  'user-limits',
  'create-api-key',
  'revoke-api-key',
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
  actor: AuditAuthor,
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
    // Each side an index probe: lower(txemail) since migration 001, lower(txusername) since 016.
    .where((eb) => eb.or([eb(sql<string>`lower(u.txemail)`, '=', needle), eb(sql<string>`lower(u.txusername)`, '=', needle)]))
    .orderBy('u.idappuser')
    .limit(CANDIDATES_SHOWN + 1)
    .execute();
  if (exact.length > 0) return { exact, partial: [], partialCount: 0 };
  // One or two characters have no trigram (the index would be read whole) and match too many accounts to be useful.
  if (text.length < TRIGRAM_LENGTH) return { exact: [], partial: [], partialCount: 0 };
  const pattern = likeSubstring(text);
  const partial = await db
    .selectFrom('chatbot_schema.app_user as u')
    .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
    .where((eb) => eb.or([eb(sql<string>`lower(u.txusername)`, 'like', pattern), eb(sql<string>`lower(u.txemail)`, 'like', pattern)]))
    // No ORDER BY: sorting every match to show five costs more than it helps; the few found are sorted here.
    .limit(CANDIDATES_SHOWN + 1)
    .execute();
  partial.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : a.id - b.id));
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
/** At most this many people per list (the most recently named): a datalist is sent whole with the page. */
const SUGGEST_MAX_PEOPLE = 300;

/**
 * Who the filters' suggestions offer: the admins and users named in the newest rows of the log (plus today's admins,
 * who may not have acted yet), existing accounts only, by name. The ids come first, then primary-key lookups of that
 * list: one statement would have the planner scan every account (~45 ms at 100,000 on PostgreSQL).
 */
export async function suggestPeople(db: Kysely<Database>): Promise<{ admins: AccountRef[]; users: AccountRef[] }> {
  const recentIds = async (column: 'idactor' | 'idtarget'): Promise<number[]> => {
    const rows = await db
      .selectFrom((eb) => eb.selectFrom('chatbot_schema.admin_audit').select(['idaudit', column]).orderBy('idaudit', 'desc').limit(SUGGEST_FROM_ROWS).as('r'))
      .select(`r.${column} as id`)
      .where(`r.${column}`, 'is not', null)
      .groupBy(`r.${column}`)
      .orderBy((eb) => eb.fn.max('r.idaudit'), 'desc')
      .limit(SUGGEST_MAX_PEOPLE)
      .execute();
    return rows.map((r) => Number(r.id));
  };
  const accounts = async (ids: number[]): Promise<AccountRef[]> =>
    ids.length === 0
      ? []
      : db
          .selectFrom('chatbot_schema.app_user as u')
          .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
          .where('u.idappuser', 'in', ids)
          .orderBy('u.txusername')
          .orderBy('u.idappuser')
          .execute();
  const [actors, targets, admins] = await Promise.all([
    recentIds('idactor'),
    recentIds('idtarget'),
    db.selectFrom('chatbot_schema.user_role').select('idappuser as id').where('idrole', '=', ADMIN_ROLE_ID).limit(SUGGEST_MAX_PEOPLE).execute(),
  ]);
  const adminIds = [...new Set([...actors, ...admins.map((a) => a.id)])];
  const [adminList, userList] = await Promise.all([accounts(adminIds), accounts(targets)]);
  return { admins: adminList, users: userList };
}
