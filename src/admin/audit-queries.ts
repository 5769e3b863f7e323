import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

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
  'default-model',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRow {
  id: number;
  at: Date;
  actorId: number | null;
  actor: string;
  targetId: number | null;
  target: string | null;
  action: string;
  details: Record<string, unknown>;
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
 * together or not at all. Names are copied so a row still reads right if the account is renamed later.
 */
export async function writeAudit(
  db: Kysely<Database>,
  actor: AuditActor,
  action: AuditAction,
  targets: AuditTarget[] | null,
  details: Record<string, unknown>,
): Promise<void> {
  const base = { idactor: actor.id, txactor: actor.username, txaction: action, jsdetails: JSON.stringify(details), txip: actor.ip };
  const rows = targets === null ? [{ ...base, idtarget: null, txtarget: null }] : targets.map((t) => ({ ...base, idtarget: t.id, txtarget: t.username }));
  if (rows.length > 0) await db.insertInto('chatbot_schema.admin_audit').values(rows).execute();
}

/** Newest first, by the primary key (ids grow with time; the key's index serves the order and the page). */
export async function listAudit(db: Kysely<Database>, query: AuditQuery, limit = AUDIT_PER_PAGE): Promise<{ rows: AuditRow[]; hasMore: boolean }> {
  let q = db
    .selectFrom('chatbot_schema.admin_audit')
    .select([
      'idaudit as id',
      'dtcreated as at',
      'idactor as actorId',
      'txactor as actor',
      'idtarget as targetId',
      'txtarget as target',
      'txaction as action',
      'jsdetails as details',
      'txip as ip',
    ])
    .orderBy('idaudit', 'desc')
    .limit(limit + 1)
    .offset((query.page - 1) * limit);
  if (query.actorId !== undefined) q = q.where('idactor', '=', query.actorId);
  if (query.targetId !== undefined) q = q.where('idtarget', '=', query.targetId);
  if (query.action !== undefined) q = q.where('txaction', '=', query.action);
  const rows = await q.execute();
  return { rows: rows.slice(0, limit).map((r) => ({ ...r, id: Number(r.id) })), hasMore: rows.length > limit };
}
