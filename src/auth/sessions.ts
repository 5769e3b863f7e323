import { type Expression, sql } from 'kysely';
import { generateToken, sha256Hex } from '../crypto/tokens.ts';
import { compileOnce } from '../db/compile-once.ts';
import type { Db } from '../db/database.ts';
import type { SignInMethod } from '../db/schema.ts';
import { ADMIN_ROLE_ID } from '../users/user-queries.ts';

/** A session ends after a week without use, and a month after sign-in whatever happens. */
export const SESSION_IDLE_MS = 7 * 24 * 60 * 60 * 1000;
export const SESSION_ABSOLUTE_MS = 30 * 24 * 60 * 60 * 1000;
/** A sign-in waiting for its second factor is abandoned after this long. */
export const SECOND_FACTOR_PENDING_MS = 5 * 60 * 1000;
/**
 * Step-up (decision record 011): enrolling 2FA (and later creating API keys or passkeys) needs a proof of who is
 * behind the session no older than this: long enough to finish an enrolment, short enough that a session stolen
 * later cannot use it.
 */
export const STEP_UP_WINDOW_MS = 10 * 60 * 1000;
/** last_seen is written at most this often, so reading a page is not a write. */
const TOUCH_INTERVAL_MS = 60 * 1000;

export interface SessionUser {
  sessionId: string;
  userId: number;
  username: string;
  email: string;
  isAdmin: boolean;
  is2faEnabled: boolean;
  /** The account has a passkey: a second factor like TOTP (REQUIRE_2FA_FOR_ADMINS, the second step, the step-up). */
  hasPasskey: boolean;
  /** Always true for a complete session; a pending one may belong to a deactivated account (told so after its code). */
  isActive: boolean;
  signInMethod: SignInMethod;
  /** Only the first factor is done: such a session may reach the second step and sign-out, nothing else. */
  secondFactorPending: boolean;
  /** The person proved who they are within STEP_UP_WINDOW_MS (see requireRecentProof). */
  hasRecentProof: boolean;
}

export interface NewSession {
  /** Default `password`. */
  method?: SignInMethod;
  secondFactorPending?: boolean;
  /** The sign-in proved who is behind it (every factor the account has): the step-up's clock starts now. */
  proved?: boolean;
  userAgent?: string;
  ip?: string;
}

/** Stores only the SHA-256 of the token: a leaked session table signs nobody in. Returns the token for the cookie. */
export async function createSession(db: Db, userId: number, meta: NewSession): Promise<string> {
  const token = generateToken();
  const pending = meta.secondFactorPending ?? false;
  await db
    .insertInto('chatbot_schema.session')
    .values({
      idsession: sha256Hex(token),
      idappuser: userId,
      dtexpires: new Date(Date.now() + (pending ? SECOND_FACTOR_PENDING_MS : SESSION_ABSOLUTE_MS)),
      txuser_agent: meta.userAgent?.slice(0, 300) ?? null,
      txip: meta.ip ?? null,
      txsign_in_method: meta.method ?? 'password',
      is_second_factor_pending: pending,
      dtlast_proof: meta.proved && !pending ? sql<Date>`now()` : null,
    })
    .execute();
  return token;
}

/** The session check: unexpired (idle and absolute), the account active (see below), its roles read (never copied). */
const sessionCheck = (db: Db, sessionId: string) =>
  db
    .selectFrom('chatbot_schema.session as s')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 's.idappuser')
    .select([
      's.idsession as sessionId',
      's.dtlast_seen as lastSeen',
      's.txsign_in_method as signInMethod',
      's.is_second_factor_pending as secondFactorPending',
      'u.idappuser as userId',
      'u.txusername as username',
      'u.txemail as email',
      'u.is_2fa_enabled as is2faEnabled',
      'u.is_active as isActive',
      sql<boolean>`coalesce(s.dtlast_proof > now() - make_interval(secs => ${STEP_UP_WINDOW_MS / 1000}), false)`.as('hasRecentProof'),
      (eb) => eb.exists(eb.selectFrom('chatbot_schema.passkey as pk').select('pk.idpasskey').whereRef('pk.idappuser', '=', 'u.idappuser')).as('hasPasskey'),
      (eb) =>
        eb
          .exists(
            eb.selectFrom('chatbot_schema.user_role as r').select('r.idrole').whereRef('r.idappuser', '=', 'u.idappuser').where('r.idrole', '=', ADMIN_ROLE_ID),
          )
          .as('isAdmin'),
    ])
    .where('s.idsession', '=', sessionId)
    .where('s.dtexpires', '>', sql<Date>`now()`)
    .where('s.dtlast_seen', '>', sql<Date>`now() - make_interval(secs => ${SESSION_IDLE_MS / 1000})`)
    // A deactivated account is out on its next request. Only a pending session may be of one: it reaches the second
    // step alone, so that "deactivated" is said after the code (sign-in.ts), never before.
    .where((eb) => eb.or([eb('u.is_active', '=', true), eb('s.is_second_factor_pending', '=', true)]));

// Built and compiled once (compileOnce): this runs on every request but static files.
const sessionQuery = compileOnce(sessionCheck);

/**
 * A page's own data, read in the same statement as the session check (one round trip instead of two for the pages
 * every user loads, like /chat). `build` gives it as one SQL expression of the signed-in user's id (`userId` is a
 * reference to the checked account's row, so the data can only be that user's); `args` are its other bound values.
 * The statement returns nothing when the session is not valid, so no data is read for anyone else.
 */
export type CompanionBuild<A extends unknown[]> = (db: Db, userId: Expression<number>, ...args: A) => Expression<unknown>;

const companionQueries = new WeakMap<CompanionBuild<never[]>, ReturnType<typeof compileOnce<[string, ...unknown[]], SessionRow & { companion: unknown }>>>();

function sessionQueryWith<A extends unknown[]>(build: CompanionBuild<A>) {
  const key = build as unknown as CompanionBuild<never[]>;
  let query = companionQueries.get(key);
  if (!query) {
    query = compileOnce((db: Db, sessionId: string, ...args: unknown[]) =>
      sessionCheck(db, sessionId).select(sql`${build(db, sql.ref<number>('u.idappuser'), ...(args as A))}`.as('companion')),
    );
    companionQueries.set(key, query);
  }
  return query;
}

type SessionRow = Awaited<ReturnType<typeof sessionQuery>>[number];

/**
 * The session and its user, checked on every request: unexpired (idle and absolute), and the account active.
 * Roles are read here too, never copied into the session, so a demotion bites on the next request. With a
 * companion, the page's data comes back with it (`companion`), from the same statement.
 */
export async function validateSessionToken<A extends unknown[]>(
  db: Db,
  token: string,
  companion?: { build: CompanionBuild<A>; args: A },
): Promise<(SessionUser & { companion?: unknown }) | null> {
  const sessionId = sha256Hex(token);
  const [row] = companion ? await sessionQueryWith(companion.build)(db, sessionId, ...companion.args) : await sessionQuery(db, sessionId);
  if (!row) return null;
  if (Date.now() - row.lastSeen.getTime() > TOUCH_INTERVAL_MS) {
    await db.updateTable('chatbot_schema.session').set({ dtlast_seen: sql`now()` }).where('idsession', '=', sessionId).execute();
  }
  const { lastSeen: _, isAdmin, hasRecentProof, hasPasskey, ...user } = row;
  return { ...user, isAdmin: Boolean(isAdmin), hasRecentProof: Boolean(hasRecentProof), hasPasskey: Boolean(hasPasskey) };
}

/**
 * A sign-in's session, in one transaction: the browser's previous session (if any) is deleted, the new one made,
 * and for a complete sign-in the account's dtlast_login set. Returns the new token.
 */
export async function rotateSession(db: Db, previousSessionId: string | null, userId: number, meta: NewSession): Promise<string> {
  return db.transaction().execute(async (trx) => {
    if (previousSessionId) await trx.deleteFrom('chatbot_schema.session').where('idsession', '=', previousSessionId).execute();
    const token = await createSession(trx, userId, meta);
    if (!meta.secondFactorPending) {
      await trx.updateTable('chatbot_schema.app_user').set({ dtlast_login: sql`now()` }).where('idappuser', '=', userId).execute();
    }
    return token;
  });
}

/** The "confirm it's you" form was passed: the session's step-up clock starts again. */
export async function recordProof(db: Db, sessionId: string): Promise<void> {
  await db.updateTable('chatbot_schema.session').set({ dtlast_proof: sql`now()` }).where('idsession', '=', sessionId).execute();
}

export async function invalidateSession(db: Db, sessionId: string): Promise<void> {
  await db.deleteFrom('chatbot_schema.session').where('idsession', '=', sessionId).execute();
}

/** Signs a user out everywhere: at deactivation, and when 2FA is disabled. */
export async function invalidateUserSessions(db: Db, userId: number): Promise<void> {
  await db.deleteFrom('chatbot_schema.session').where('idappuser', '=', userId).execute();
}

export async function deleteExpiredSessions(db: Db): Promise<number> {
  const result = await db
    .deleteFrom('chatbot_schema.session')
    .where((eb) =>
      eb.or([eb('dtexpires', '<=', sql<Date>`now()`), eb('dtlast_seen', '<=', sql<Date>`now() - make_interval(secs => ${SESSION_IDLE_MS / 1000})`)]),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
