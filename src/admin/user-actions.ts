import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../http/errors.ts';
import { ADMIN_ROLE_ID } from '../users/user-queries.ts';
import { type AuditActor, writeAudit } from './audit-queries.ts';

export type UserAction = 'promote' | 'demote' | 'deactivate' | 'reactivate' | 'sign-out-everywhere';
export const USER_ACTIONS: readonly UserAction[] = ['promote', 'demote', 'deactivate', 'reactivate', 'sign-out-everywhere'];

/**
 * Key of the transaction-scoped advisory lock that every admin-reducing change (demote, deactivate) takes first.
 * Under it, "is the actor still an active admin" and "does an active admin remain" are read and acted on with no
 * other such change in between: two admins demoting each other at once end with exactly one demoted.
 */
const ADMIN_GUARD_LOCK = 0x61646d6e; // 'admn'

/** Answers whose generation is still running; the generation reads is_stop_requested at its next flush. */
const RUNNING_ANSWER = ['pending', 'streaming'] as const;

export interface ActionOutcome {
  /** The targets the action changed (an already-active user is not reactivated again). */
  changed: { id: number; username: string }[];
  unchanged: { id: number; username: string }[];
}

type Trx = Transaction<Database>;

async function isActiveAdmin(trx: Trx, userId: number): Promise<boolean> {
  const row = await trx
    .selectFrom('chatbot_schema.app_user as u')
    .innerJoin('chatbot_schema.user_role as r', 'r.idappuser', 'u.idappuser')
    .select('u.idappuser')
    .where('u.idappuser', '=', userId)
    .where('r.idrole', '=', ADMIN_ROLE_ID)
    .where('u.is_active', '=', true)
    .executeTakeFirst();
  return row !== undefined;
}

/** Active admins that are not among `excluded`: what would be left after demoting or deactivating those. */
async function countOtherActiveAdmins(trx: Trx, excluded: number[]): Promise<number> {
  const row = await trx
    .selectFrom('chatbot_schema.app_user as u')
    .innerJoin('chatbot_schema.user_role as r', 'r.idappuser', 'u.idappuser')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('r.idrole', '=', ADMIN_ROLE_ID)
    .where('u.is_active', '=', true)
    .where('u.idappuser', 'not in', excluded)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Ends a user's sessions and asks their running answers to stop, through the database so that every app process
 * sees it: the sessions are gone at the next request, and each generation stops at its next flush.
 */
async function cutOff(trx: Trx, ids: number[]): Promise<void> {
  await trx.deleteFrom('chatbot_schema.session').where('idappuser', 'in', ids).execute();
  await trx
    .updateTable('chatbot_schema.response')
    .set({ is_stop_requested: true })
    .where('txstatus', 'in', RUNNING_ANSWER)
    .where('idchat', 'in', (eb) => eb.selectFrom('chatbot_schema.chat').select('idchat').where('idappuser', 'in', ids))
    .execute();
}

/**
 * One action on one or more users, in one transaction with one audit row per changed user. Refusals throw
 * (403 when the actor is no longer an admin, 409 with the reason for the guards) and change nothing.
 */
export async function applyUserAction(db: Db, actor: AuditActor, action: UserAction, targetIds: number[]): Promise<ActionOutcome> {
  const ids = [...new Set(targetIds)];
  return db.transaction().execute(async (trx) => {
    const reducesAdmins = action === 'demote' || action === 'deactivate';
    if (reducesAdmins) {
      if (ids.includes(actor.id)) throw new ConflictError(action === 'demote' ? 'You cannot demote yourself.' : 'You cannot deactivate yourself.');
      await sql`SELECT pg_advisory_xact_lock(${ADMIN_GUARD_LOCK})`.execute(trx);
    }
    // Read under the lock: the actor may have been demoted or deactivated by another admin a moment ago.
    if (!(await isActiveAdmin(trx, actor.id))) throw new ForbiddenError('This page is for administrators.');
    const targets = await trx
      .selectFrom('chatbot_schema.app_user as u')
      .select((eb) => [
        'u.idappuser as id',
        'u.txusername as username',
        'u.is_active as isActive',
        eb
          .exists(
            eb.selectFrom('chatbot_schema.user_role as r').select('r.idrole').whereRef('r.idappuser', '=', 'u.idappuser').where('r.idrole', '=', ADMIN_ROLE_ID),
          )
          .as('isAdmin'),
      ])
      .where('u.idappuser', 'in', ids)
      .orderBy('u.idappuser')
      .forUpdate()
      .execute();
    if (targets.length !== ids.length) throw new NotFoundError(ids.length === 1 ? 'This user does not exist.' : 'Some of the selected users do not exist.');
    if (reducesAdmins && targets.some((t) => t.isAdmin && t.isActive) && (await countOtherActiveAdmins(trx, ids)) === 0) {
      throw new ConflictError(`Parley needs at least one active admin: ${action === 'demote' ? 'demoting' : 'deactivating'} would leave none.`);
    }
    const changes = (t: (typeof targets)[number]): boolean => {
      switch (action) {
        case 'promote':
          return !t.isAdmin;
        case 'demote':
          return Boolean(t.isAdmin);
        case 'deactivate':
          return t.isActive;
        case 'reactivate':
          return !t.isActive;
        case 'sign-out-everywhere':
          return true;
      }
    };
    const changed = targets.filter(changes).map(({ id, username }) => ({ id, username }));
    const unchanged = targets.filter((t) => !changes(t)).map(({ id, username }) => ({ id, username }));
    const changedIds = changed.map((t) => t.id);
    if (changedIds.length > 0) {
      switch (action) {
        case 'promote':
          // Idempotent as in the seed: a concurrent promotion of the same user is not an error.
          await trx
            .insertInto('chatbot_schema.user_role')
            .values(changedIds.map((idappuser) => ({ idappuser, idrole: ADMIN_ROLE_ID })))
            .onConflict((oc) => oc.columns(['idappuser', 'idrole']).doNothing())
            .execute();
          break;
        case 'demote':
          await trx.deleteFrom('chatbot_schema.user_role').where('idappuser', 'in', changedIds).where('idrole', '=', ADMIN_ROLE_ID).execute();
          break;
        case 'deactivate':
          await trx.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('idappuser', 'in', changedIds).execute();
          await cutOff(trx, changedIds);
          break;
        case 'reactivate':
          // Old sessions were deleted at deactivation: the user signs in again.
          await trx.updateTable('chatbot_schema.app_user').set({ is_active: true }).where('idappuser', 'in', changedIds).execute();
          break;
        case 'sign-out-everywhere':
          await trx.deleteFrom('chatbot_schema.session').where('idappuser', 'in', changedIds).execute();
          break;
      }
      await writeAudit(trx, actor, action, changed, {});
    }
    return { changed, unchanged };
  });
}
