import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/guards.ts';
import type { SessionUser } from '../auth/sessions.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { findGroup, listManualGroups } from '../groups/group-queries.ts';
import { BadRequestError } from '../http/errors.ts';
import { type FormRefusal, formRefusal } from '../http/form-refusal.ts';
import { formIdList, formString, pathId } from '../http/validation.ts';
import { actorOf, flashOutcome } from './action-replies.ts';
import { auditRoutes } from './audit-routes.ts';
import { changeMembers } from './groups-routes.ts';
import { passwordResetRoutes } from './password-reset-routes.ts';
import { type ActionOutcome, applyUserAction } from './user-actions.ts';
import { renderUserPage, userDetailRoutes } from './user-detail-routes.ts';
import { listUsers, type UserListQuery } from './user-list-queries.ts';
import { type ListRefusal, usersPage } from './users-views.ts';

/** Pages beyond this are refused: 1,000,000 users at 50 a page. Keeps OFFSET (and the page number) bounded. */
const MAX_PAGE = 20_000;

const listQuerySchema = z.object({
  q: z
    .string()
    .max(200, 'The search is too long (at most 200 characters).')
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'The search contains characters that are not allowed.')
    .transform((v) => v.trim())
    .default(''),
  status: z.enum(['all', 'active', 'deactivated'], { error: 'status must be all, active or deactivated.' }).default('all'),
  role: z.enum(['any', 'admin'], { error: 'role must be any or admin.' }).default('any'),
  twofa: z.enum(['any', 'off'], { error: 'twofa must be any or off.' }).default('any'),
  sort: z.enum(['username', 'created', 'last-sign-in', 'prompts'], { error: 'sort must be username, created, last-sign-in or prompts.' }).default('username'),
  page: z
    .string()
    .regex(/^[1-9]\d{0,4}$/, 'page must be a page number.')
    .transform(Number)
    .pipe(z.number().max(MAX_PAGE, `page must be at most ${MAX_PAGE}.`))
    .default(1),
});

/** The list's query string: each parameter at most once (a repeated one is a 400, not "one of them wins"). */
export function parseListQuery(raw: unknown): UserListQuery {
  const input = (raw ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (Array.isArray(value)) throw new BadRequestError(`The parameter ${key} must be given once.`);
  }
  const parsed = listQuerySchema.safeParse(input);
  if (!parsed.success) throw new BadRequestError(parsed.error.issues[0]?.message ?? 'Bad query.');
  const { q, status, role, twofa, sort, page } = parsed.data;
  return { q, status, adminsOnly: role === 'admin', twoFactorOff: twofa === 'off', sort, page };
}

/**
 * Where an action returns: the list view it came from, given as its query string only ("?q=…&page=3"), so the
 * redirect can never leave /admin/users (no open redirect). Anything else returns to the plain list.
 */
const backSchema = z
  .string()
  .max(600)
  .regex(/^(\?[A-Za-z0-9=&%+._~-]*)?$/)
  .optional()
  .catch(undefined);

/** `back=detail` (the user's own page) returns to `/admin/users/:id`. */
export function backTo(body: unknown, userId?: number): string {
  const raw = (body as Record<string, unknown> | undefined)?.back;
  if (raw === 'detail' && userId !== undefined) return `/admin/users/${userId}`;
  const back = backSchema.parse(raw);
  return `/admin/users${back ?? ''}`;
}

/** The list view a form came from (its `back`), to show it again with a refusal; a view that no longer parses is the plain list. */
function backQuery(body: unknown): UserListQuery {
  const back = backSchema.parse((body as Record<string, unknown> | undefined)?.back) ?? '';
  try {
    return parseListQuery(Object.fromEntries(new URLSearchParams(back)));
  } catch {
    return parseListQuery({});
  }
}

/** What a refused bulk form had ticked, to tick it again (only well-formed ids; the page shows only its own rows anyway). */
function tickedIds(body: unknown): number[] {
  const raw = (body as Record<string, unknown> | undefined)?.ids;
  return [raw]
    .flat()
    .filter((v): v is string => typeof v === 'string' && /^[1-9]\d{0,9}$/.test(v))
    .map(Number);
}

const bulkSchema = z.object({
  action: z.enum(['deactivate', 'reactivate', 'sign-out-everywhere'], { error: 'Choose deactivate, reactivate or sign out everywhere.' }),
  ids: formIdList('user'),
  back: formString(600, 'back').optional(),
});

/** "Add to group" / "Remove from group": the bulk form's group actions (a group id must be chosen). */
const groupBulkSchema = z.object({
  action: z.enum(['add-to-group', 'remove-from-group']),
  group: z
    .string({ error: 'Choose the group.' })
    .regex(/^[1-9]\d{0,9}$/, 'Choose the group.')
    .transform(Number)
    .optional(),
  ids: formIdList('user'),
});

export async function usersAdminRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  await app.register(auditRoutes, { db });
  await app.register(userDetailRoutes, { db, config });
  await app.register(passwordResetRoutes, { db });

  /** The list page; after a refused form, with the message beside what was used and the status of the refusal. */
  async function renderList(
    req: FastifyRequest,
    reply: FastifyReply,
    admin: SessionUser,
    query: UserListQuery,
    refused?: { refusal: ListRefusal; status: number },
  ) {
    const [{ users, total, totalIsCapped }, groups] = await Promise.all([listUsers(db, query), listManualGroups(db)]);
    const body = usersPage({ csrfToken: req.csrfToken(), query, users, total, totalIsCapped, selfId: admin.userId, refusal: refused?.refusal, groups });
    return reply.page({ title: 'Users', body }, refused?.status);
  }

  app.get('/admin/users', async (req, reply) => {
    const admin = requireAdmin(req);
    return renderList(req, reply, admin, parseListQuery(req.query));
  });

  for (const action of ['promote', 'demote', 'deactivate', 'reactivate'] as const) {
    app.post(`/admin/users/:id/${action}`, async (req, reply) => {
      const admin = requireAdmin(req);
      const id = pathId(req.params, 'id', 'This user does not exist.');
      let outcome: ActionOutcome;
      try {
        outcome = await applyUserAction(db, actorOf(req, admin), action, [id]);
      } catch (err) {
        const refused = formRefusal(err);
        if (!refused) throw err;
        // Shown where the button was: the user's own page, or that row of the list view it came from.
        if ((req.body as Record<string, unknown> | undefined)?.back === 'detail' && refused.status !== 404)
          return renderUserPage(db, req, reply, admin, id, { at: 'actions', ...refused });
        return renderList(req, reply, admin, backQuery(req.body), { refusal: { at: 'row', userId: id, message: refused.message }, status: refused.status });
      }
      flashOutcome(reply, action, outcome);
      return reply.redirect(backTo(req.body, id), 303);
    });
  }

  app.post('/admin/users/bulk', async (req, reply) => {
    const admin = requireAdmin(req);
    const refuse = ({ status, message }: FormRefusal) => {
      const chosen = (req.body as Record<string, unknown> | undefined)?.action;
      const refusal: ListRefusal = { at: 'bulk', message, action: typeof chosen === 'string' ? chosen : '', ticked: tickedIds(req.body) };
      return renderList(req, reply, admin, backQuery(req.body), { refusal, status });
    };
    const chosen = (req.body as Record<string, unknown> | undefined)?.action;
    if (chosen === 'add-to-group' || chosen === 'remove-from-group') {
      const groupAction = groupBulkSchema.safeParse(req.body ?? {});
      if (!groupAction.success) return refuse({ status: 400, message: groupAction.error.issues[0]?.message ?? 'Choose the group and the users.' });
      const { action, group: groupId, ids } = groupAction.data;
      const group = groupId === undefined ? undefined : await findGroup(db, groupId);
      if (!group) return refuse({ status: 400, message: 'Choose the group.' });
      try {
        const n = await changeMembers(db, actorOf(req, admin), group, ids, action === 'add-to-group');
        reply.flash('success', `${n} ${n === 1 ? 'person' : 'people'} ${action === 'add-to-group' ? 'added to' : 'removed from'} “${group.name}”.`);
      } catch (err) {
        const refused = formRefusal(err);
        if (!refused) throw err;
        return refuse(refused);
      }
      return reply.redirect(backTo(req.body), 303);
    }
    const parsed = bulkSchema.safeParse(req.body ?? {});
    if (!parsed.success) return refuse({ status: 400, message: parsed.error.issues[0]?.message ?? 'Choose an action and the users.' });
    const { action, ids } = parsed.data;
    let outcome: ActionOutcome;
    try {
      outcome = await applyUserAction(db, actorOf(req, admin), action, ids);
    } catch (err) {
      const refused = formRefusal(err);
      if (!refused) throw err;
      return refuse(refused);
    }
    flashOutcome(reply, action, outcome);
    return reply.redirect(backTo(req.body), 303);
  });
}
