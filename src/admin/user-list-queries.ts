import { type ExpressionBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { AppUserTable, Database } from '../db/schema.ts';
import { ADMIN_ROLE_ID } from '../users/user-queries.ts';

/** The list's page size: the seed showed every user on one page, which at 100,000 users is megabytes of HTML. */
export const USERS_PER_PAGE = 50;

/** pg_trgm indexes strings of three characters and more. */
export const TRIGRAM_LENGTH = 3;

/** A search's matches are counted up to this many ("10000+"): 200 pages. */
export const SEARCH_COUNT_CAP = 10_000;

export type UserSort = 'username' | 'created' | 'last-sign-in' | 'prompts';
export type StatusFilter = 'all' | 'active' | 'deactivated';

export interface UserListQuery {
  q: string;
  status: StatusFilter;
  adminsOnly: boolean;
  twoFactorOff: boolean;
  sort: UserSort;
  page: number;
}

export type SignInMethodName = 'password' | 'google';

export interface UserListRow {
  id: number;
  username: string;
  email: string;
  roles: string[];
  isActive: boolean;
  is2faEnabled: boolean;
  /** How many passkeys the account has (a second factor, like TOTP). */
  passkeys: number;
  signInMethods: SignInMethodName[];
  created: Date;
  lastSignIn: Date | null;
  prompts: number;
}

/** `LIKE` treats %, _ and \ as wildcards/escape: a search for "a_b" means those three characters. */
export function likeSubstring(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type Eb = ExpressionBuilder<Database & { u: AppUserTable }, 'u'>;

/** What the list and a user's page both show of an account (`u` is chatbot_schema.app_user): one column list. */
export function userSummaryColumns(eb: Eb) {
  return [
    'u.idappuser as id',
    'u.txusername as username',
    'u.txemail as email',
    'u.is_active as isActive',
    'u.is_2fa_enabled as is2faEnabled',
    'u.dtcreated as created',
    'u.dtlast_login as lastSignIn',
    'u.nprompts as prompts',
    sql<boolean>`u.password IS NOT NULL`.as('hasPassword'),
    // A passkey is a second factor as TOTP is (decision record 017): the list's 2FA column and filter count both.
    sql<number>`(SELECT count(*)::int FROM chatbot_schema.passkey p WHERE p.idappuser = u.idappuser)`.as('passkeys'),
    sql<string[]>`ARRAY(${eb
      .selectFrom('chatbot_schema.user_role as ur')
      .innerJoin('chatbot_schema.role as r', 'r.idrole', 'ur.idrole')
      .select('r.txname')
      .whereRef('ur.idappuser', '=', 'u.idappuser')
      .orderBy('r.idrole')})`.as('roles'),
  ] as const;
}

function filters(eb: Eb, query: UserListQuery) {
  const conditions = [];
  if (query.q.length >= TRIGRAM_LENGTH) {
    // lower(...) LIKE matches the trigram GIN indexes of migration 010 (where pg_trgm exists): a BitmapOr of the two.
    const pattern = likeSubstring(query.q);
    conditions.push(eb.or([eb(sql<string>`lower(u.txusername)`, 'like', pattern), eb(sql<string>`lower(u.txemail)`, 'like', pattern)]));
  } else if (query.q !== '') {
    // One or two characters have no trigram, and the index would be read whole. A different statement text, because
    // statements are prepared (src/db/database.ts) and PostgreSQL settles on one generic plan per text: this one's
    // plan is the sort index walked with a filter, which finds 50 matches of a short string at once.
    const needle = query.q.toLowerCase();
    conditions.push(
      eb.or([eb(sql<number>`position(${needle} in lower(u.txusername))`, '>', 0), eb(sql<number>`position(${needle} in lower(u.txemail))`, '>', 0)]),
    );
  }
  if (query.status === 'active') conditions.push(eb('u.is_active', '=', true));
  if (query.status === 'deactivated') conditions.push(eb('u.is_active', '=', false));
  if (query.twoFactorOff) {
    conditions.push(eb('u.is_2fa_enabled', '=', false));
    conditions.push(eb.not(eb.exists(eb.selectFrom('chatbot_schema.passkey as pk').select('pk.idappuser').whereRef('pk.idappuser', '=', 'u.idappuser'))));
  }
  if (query.adminsOnly) {
    conditions.push(
      eb.exists(
        eb.selectFrom('chatbot_schema.user_role as ar').select('ar.idrole').whereRef('ar.idappuser', '=', 'u.idappuser').where('ar.idrole', '=', ADMIN_ROLE_ID),
      ),
    );
  }
  return eb.and(conditions);
}

/**
 * Each order is one index of migration 010 walked from its start (ties broken by id, so pages never overlap).
 * Username ascending as the seed did; the others newest / most first, never-signed-in last.
 */
const orderings: Record<UserSort, string> = {
  username: 'u.txusername, u.idappuser',
  created: 'u.dtcreated DESC, u.idappuser DESC',
  'last-sign-in': 'u.dtlast_login DESC NULLS LAST, u.idappuser DESC',
  prompts: 'u.nprompts DESC, u.idappuser DESC',
};

/**
 * One page of users: two statements, none per row. The page reads only ids (and sort keys) through the sort's index
 * with OFFSET, then joins the 50 rows it keeps for their columns, roles and sign-in methods (a deferred join: the
 * skipped rows are never read from the table). The count runs beside it. See docs/decisions/005-admin-user-list.md.
 */
export async function listUsers(db: Db, query: UserListQuery): Promise<{ users: UserListRow[]; total: number; totalIsCapped: boolean }> {
  const order = sql.raw(orderings[query.sort]);
  const offset = (query.page - 1) * USERS_PER_PAGE;
  const pageIds = db
    .selectFrom('chatbot_schema.app_user as u')
    .select('u.idappuser')
    .where((eb) => filters(eb, query))
    .orderBy(sql`${order}`)
    .limit(USERS_PER_PAGE)
    .offset(offset);
  const [rows, countRow] = await Promise.all([
    db
      .selectFrom('chatbot_schema.app_user as u')
      .where('u.idappuser', 'in', pageIds)
      .select((eb) => [
        ...userSummaryColumns(eb),
        eb.exists(eb.selectFrom('chatbot_schema.oauth_identity as oi').select('oi.idappuser').whereRef('oi.idappuser', '=', 'u.idappuser')).as('hasGoogle'),
      ])
      .orderBy(sql`${order}`)
      .execute(),
    // A search counts at most SEARCH_COUNT_CAP matches: "user" matching 100,000 rows would otherwise be counted in
    // full on every page, and nobody pages through 200 pages of a search instead of typing more.
    db
      .selectFrom((eb) => {
        const matches = eb
          .selectFrom('chatbot_schema.app_user as u')
          .select(sql<number>`1`.as('one'))
          .where((w) => filters(w, query));
        return (query.q === '' ? matches : matches.limit(SEARCH_COUNT_CAP + 1)).as('m');
      })
      .select((eb) => eb.fn.countAll<number>().as('total'))
      .executeTakeFirstOrThrow(),
  ]);
  const users = rows.map(({ hasPassword, hasGoogle, ...row }) => ({
    ...row,
    signInMethods: [...(hasPassword ? ['password' as const] : []), ...(hasGoogle ? ['google' as const] : [])],
  }));
  const total = Number(countRow.total);
  return { users, total: Math.min(total, SEARCH_COUNT_CAP), totalIsCapped: total > SEARCH_COUNT_CAP };
}
