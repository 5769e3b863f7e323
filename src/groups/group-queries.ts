import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Limits } from './usage-limits.ts';

/** Groups (migration 020): members, model access, limits, and membership managed by the sign-in's groups claim. */

export interface GroupSummary {
  id: number;
  name: string;
  managed: boolean;
  limits: Limits;
  memberCount: number;
  modelCount: number;
}

export const MEMBERS_PER_PAGE = 50;
export const GROUP_NAME_MAX_CHARS = 100;

const group = 'chatbot_schema.user_group';
const member = 'chatbot_schema.user_group_member';

function selectGroups(db: Db) {
  return db
    .selectFrom(`${group} as g`)
    .select((eb) => [
      'g.idgroup as id',
      'g.txname as name',
      'g.is_managed as managed',
      'g.nprompts_per_day',
      'g.ntokens_per_day',
      'g.ntokens_per_month',
      eb.selectFrom(`${member} as m`).select(eb.fn.countAll<number>().as('n')).whereRef('m.idgroup', '=', 'g.idgroup').as('memberCount'),
      eb.selectFrom('chatbot_schema.llm_group as lg').select(eb.fn.countAll<number>().as('n')).whereRef('lg.idgroup', '=', 'g.idgroup').as('modelCount'),
    ]);
}

type GroupRow = {
  id: number;
  name: string;
  managed: boolean;
  nprompts_per_day: number | null;
  ntokens_per_day: number | null;
  ntokens_per_month: number | null;
  memberCount: number | null;
  modelCount: number | null;
};
const toSummary = (r: GroupRow): GroupSummary => ({
  id: r.id,
  name: r.name,
  managed: r.managed,
  limits: { prompts_per_day: r.nprompts_per_day, tokens_per_day: r.ntokens_per_day, tokens_per_month: r.ntokens_per_month },
  memberCount: Number(r.memberCount ?? 0),
  modelCount: Number(r.modelCount ?? 0),
});

export async function listGroups(db: Db): Promise<GroupSummary[]> {
  return (await selectGroups(db).orderBy(sql`lower(g.txname)`).orderBy('g.idgroup').execute()).map(toSummary);
}

export async function findGroup(db: Db, id: number): Promise<GroupSummary | undefined> {
  const row = await selectGroups(db).where('g.idgroup', '=', id).executeTakeFirst();
  return row && toSummary(row);
}

/** The groups people can be added to by hand (not those managed by sign-in), by name: the bulk form's choice. */
export async function listManualGroups(db: Db): Promise<Array<{ id: number; name: string }>> {
  return db
    .selectFrom(group)
    .select(['idgroup as id', 'txname as name'])
    .where('is_managed', '=', false)
    .orderBy(sql`lower(txname)`)
    .orderBy('idgroup')
    .execute();
}

/** The new group's id, or null when another group has that name (case-insensitively; the unique index decides). */
export async function createGroup(db: Db, name: string, managed: boolean): Promise<number | null> {
  const row = await db
    .insertInto(group)
    .values({ txname: name, is_managed: managed })
    .onConflict((oc) => oc.expression(sql`lower(txname)`).doNothing())
    .returning('idgroup')
    .executeTakeFirst();
  return row?.idgroup ?? null;
}

/** False when another group has that name. */
export async function updateGroup(db: Db, id: number, input: { name: string; managed: boolean }): Promise<boolean> {
  try {
    await db.updateTable(group).set({ txname: input.name, is_managed: input.managed }).where('idgroup', '=', id).execute();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return false;
    throw err;
  }
}

export async function deleteGroup(db: Db, id: number): Promise<void> {
  await db.deleteFrom(group).where('idgroup', '=', id).execute();
}

export async function setGroupLimits(db: Db, id: number, limits: Limits): Promise<void> {
  await db
    .updateTable(group)
    .set({ nprompts_per_day: limits.prompts_per_day, ntokens_per_day: limits.tokens_per_day, ntokens_per_month: limits.tokens_per_month })
    .where('idgroup', '=', id)
    .execute();
}

export interface MemberRow {
  id: number;
  username: string;
  email: string;
  isActive: boolean;
  addedAt: Date;
}

/**
 * One page of a group's members, by username (as the users list sorts them), with the number matching. Two statements whatever the group's size:
 * the member index narrows to the group; `q` matches any part of the username or e-mail, ignoring case.
 */
export async function listMembers(db: Db, groupId: number, query: { q: string; page: number }): Promise<{ members: MemberRow[]; total: number }> {
  const base = db
    .selectFrom(`${member} as m`)
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'm.idappuser')
    .where('m.idgroup', '=', groupId)
    .$if(query.q !== '', (qb) =>
      qb.where((eb) => eb.or([eb(sql`lower(u.txusername)`, 'like', likeAny(query.q)), eb(sql`lower(u.txemail)`, 'like', likeAny(query.q))])),
    );
  const [members, count] = await Promise.all([
    base
      .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email', 'u.is_active as isActive', 'm.dtadded as addedAt'])
      // The users list's order (app_user_username_idx, migration 010): a large group is read in index order, up to the page.
      .orderBy('u.txusername')
      .orderBy('u.idappuser')
      .limit(MEMBERS_PER_PAGE)
      .offset((query.page - 1) * MEMBERS_PER_PAGE)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { members, total: Number(count.n) };
}

export function likeAny(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`;
}

/** Accounts matching `q` that are not in the group yet, for "add by search" (at most `limit`). */
export async function findUsersToAdd(db: Db, groupId: number, q: string, limit = 20): Promise<Array<{ id: number; username: string; email: string }>> {
  if (q === '') return [];
  return db
    .selectFrom('chatbot_schema.app_user as u')
    .select(['u.idappuser as id', 'u.txusername as username', 'u.txemail as email'])
    .where((eb) => eb.or([eb(sql`lower(u.txusername)`, 'like', likeAny(q)), eb(sql`lower(u.txemail)`, 'like', likeAny(q))]))
    .where((eb) =>
      eb.not(eb.exists(eb.selectFrom(`${member} as m`).select('m.idgroup').where('m.idgroup', '=', groupId).whereRef('m.idappuser', '=', 'u.idappuser'))),
    )
    .orderBy(sql`lower(u.txusername)`)
    .orderBy('u.idappuser')
    .limit(limit)
    .execute();
}

/** Adds the accounts (existing ones only) to the group; the ones added, for the audit log. */
export async function addMembers(db: Db, groupId: number, userIds: number[]): Promise<Array<{ id: number; username: string }>> {
  if (userIds.length === 0) return [];
  const { rows } = await sql<{ id: number; username: string }>`
    WITH added AS (
      INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser)
      SELECT ${groupId}, u.idappuser FROM chatbot_schema.app_user u WHERE u.idappuser = ANY (${userIds}::int[])
      ON CONFLICT DO NOTHING
      RETURNING idappuser
    )
    SELECT u.idappuser AS id, u.txusername AS username FROM added JOIN chatbot_schema.app_user u USING (idappuser) ORDER BY u.idappuser`.execute(db);
  return rows;
}

/** Removes the accounts from the group; the ones removed. */
export async function removeMembers(db: Db, groupId: number, userIds: number[]): Promise<Array<{ id: number; username: string }>> {
  if (userIds.length === 0) return [];
  const { rows } = await sql<{ id: number; username: string }>`
    WITH removed AS (
      DELETE FROM chatbot_schema.user_group_member m WHERE m.idgroup = ${groupId} AND m.idappuser = ANY (${userIds}::int[]) RETURNING m.idappuser
    )
    SELECT u.idappuser AS id, u.txusername AS username FROM removed JOIN chatbot_schema.app_user u USING (idappuser) ORDER BY u.idappuser`.execute(db);
  return rows;
}

/** The groups a user is in, by name. */
export async function listUserGroups(db: Db, userId: number): Promise<Array<{ id: number; name: string; managed: boolean; limits: Limits }>> {
  const rows = await db
    .selectFrom(`${member} as m`)
    .innerJoin(`${group} as g`, 'g.idgroup', 'm.idgroup')
    .select(['g.idgroup as id', 'g.txname as name', 'g.is_managed as managed', 'g.nprompts_per_day', 'g.ntokens_per_day', 'g.ntokens_per_month'])
    .where('m.idappuser', '=', userId)
    .orderBy(sql`lower(g.txname)`)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    managed: r.managed,
    limits: { prompts_per_day: r.nprompts_per_day, tokens_per_day: r.ntokens_per_day, tokens_per_month: r.ntokens_per_month },
  }));
}

/** A user's own limits (null each: not set). */
export async function getUserLimits(db: Db, userId: number): Promise<Limits> {
  const row = await db.selectFrom('chatbot_schema.user_limit').selectAll().where('idappuser', '=', userId).executeTakeFirst();
  return { prompts_per_day: row?.nprompts_per_day ?? null, tokens_per_day: row?.ntokens_per_day ?? null, tokens_per_month: row?.ntokens_per_month ?? null };
}

export async function setUserLimits(db: Db, userId: number, limits: Limits): Promise<void> {
  const values = { nprompts_per_day: limits.prompts_per_day, ntokens_per_day: limits.tokens_per_day, ntokens_per_month: limits.tokens_per_month };
  if (Object.values(values).every((v) => v === null)) {
    await db.deleteFrom('chatbot_schema.user_limit').where('idappuser', '=', userId).execute();
    return;
  }
  await db
    .insertInto('chatbot_schema.user_limit')
    .values({ idappuser: userId, ...values })
    .onConflict((oc) => oc.column('idappuser').doUpdateSet(values))
    .execute();
}

/** Who may use a model: everyone, or the members of `groupIds`. */
export async function getModelAccess(db: Db, modelId: number): Promise<{ restricted: boolean; groupIds: number[] }> {
  const [model, groups] = await Promise.all([
    db.selectFrom('chatbot_schema.llm').select('is_restricted').where('idllm', '=', modelId).executeTakeFirst(),
    db.selectFrom('chatbot_schema.llm_group').select('idgroup').where('idllm', '=', modelId).orderBy('idgroup').execute(),
  ]);
  return { restricted: model?.is_restricted ?? false, groupIds: groups.map((g) => g.idgroup) };
}

/** Sets who may use a model. Run it in a transaction (the route does, with its audit row): readers then see the old rule or the new one, never half. */
export async function setModelAccess(db: Db, modelId: number, access: { restricted: boolean; groupIds: number[] }): Promise<void> {
  await db.updateTable('chatbot_schema.llm').set({ is_restricted: access.restricted }).where('idllm', '=', modelId).execute();
  await db.deleteFrom('chatbot_schema.llm_group').where('idllm', '=', modelId).execute();
  const ids = access.restricted ? access.groupIds : [];
  if (ids.length > 0)
    await db
      .insertInto('chatbot_schema.llm_group')
      .values(ids.map((idgroup) => ({ idllm: modelId, idgroup })))
      .execute();
}

/** The models restricted to this group (the ones open to everyone it may use anyway). */
export async function listGroupModels(db: Db, groupId: number): Promise<Array<{ id: number; name: string }>> {
  return db
    .selectFrom('chatbot_schema.llm_group as lg')
    .innerJoin('chatbot_schema.llm as l', 'l.idllm', 'lg.idllm')
    .select(['l.idllm as id', 'l.txshortname as name'])
    .where('lg.idgroup', '=', groupId)
    .where('l.is_restricted', '=', true)
    .orderBy(sql`lower(l.txshortname)`)
    .execute();
}

/**
 * Sets the user's membership of every group managed by sign-in from the values of their sign-in's groups claim
 * (a group's name, case-insensitively): in the groups named, out of the others. One statement each way. Groups not
 * managed are left alone.
 */
export async function syncManagedGroups(db: Db, userId: number, claimValues: string[]): Promise<{ added: string[]; removed: string[] }> {
  const names = [...new Set(claimValues.map((v) => v.toLowerCase()))];
  return db.transaction().execute(async (trx) => {
    const removed = await sql<{ name: string }>`
      WITH gone AS (
        DELETE FROM chatbot_schema.user_group_member m USING chatbot_schema.user_group g
        WHERE m.idgroup = g.idgroup AND g.is_managed AND m.idappuser = ${userId} AND NOT (lower(g.txname) = ANY (${names}::text[]))
        RETURNING g.txname
      ) SELECT txname AS name FROM gone ORDER BY 1`.execute(trx);
    const added = await sql<{ name: string }>`
      WITH joined AS (
        INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser)
        SELECT g.idgroup, ${userId} FROM chatbot_schema.user_group g WHERE g.is_managed AND lower(g.txname) = ANY (${names}::text[])
        ON CONFLICT DO NOTHING
        RETURNING idgroup
      ) SELECT g.txname AS name FROM joined JOIN chatbot_schema.user_group g USING (idgroup) ORDER BY 1`.execute(trx);
    return { added: added.rows.map((r) => r.name), removed: removed.rows.map((r) => r.name) };
  });
}
