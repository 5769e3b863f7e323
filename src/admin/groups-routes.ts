import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import {
  addMembers,
  createGroup,
  deleteGroup,
  findGroup,
  findUsersToAdd,
  type GroupSummary,
  listGroupModels,
  listGroups,
  listMembers,
  removeMembers,
  setGroupLimits,
  updateGroup,
} from '../groups/group-queries.ts';
import { bidiProblem } from '../http/display-name.ts';
import { BadRequestError, ConflictError, NotFoundError } from '../http/errors.ts';
import { formRefusal } from '../http/form-refusal.ts';
import { formIdList, formString, parseBody, pathId } from '../http/validation.ts';
import { actorOf } from './action-replies.ts';
import { writeAudit } from './audit-queries.ts';
import { type GroupPageView, groupPage, groupsPage } from './groups-views.ts';
import { limitsSchema, limitsSummary } from './limits-form.ts';

/** Pages beyond this are refused: a group of 1,000,000 members at 50 a page. Keeps OFFSET bounded. */
const MAX_PAGE = 20_000;

const groupFormSchema = z.object({
  name: formString(100, 'Name')
    .transform((v) => v.trim())
    .pipe(z.string().min(1, 'Enter a name.'))
    .superRefine((v, ctx) => {
      // Admins pick groups by name (bulk actions, model access): one must not read as another.
      const problem = bidiProblem(v, 'Name');
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  managed: z
    .string()
    .optional()
    .transform((v) => v !== undefined),
});

const search = z
  .string({ error: 'A search must be given once.' })
  .max(200, 'The search is too long (at most 200 characters).')
  .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'The search contains characters that are not allowed.')
  .transform((v) => v.trim())
  .default('');

const groupQuerySchema = z.object({
  q: search,
  add_q: search,
  page: z
    .string({ error: 'page must be given once.' })
    .regex(/^[1-9]\d{0,5}$/, 'page must be a page number.')
    .transform(Number)
    .pipe(z.number().max(MAX_PAGE, `page must be at most ${MAX_PAGE}.`))
    .default(1),
});

const membersSchema = z.object({ user_ids: formIdList('user') });

const MANAGED_REFUSAL = 'This group is managed by sign-in: its members come from each sign-in’s groups claim and cannot be changed here.';

const typed = (body: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries((body ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));

export async function groupsAdminRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db } = opts;
  const groupsClaim = opts.config.OIDC_GROUPS_CLAIM;

  const findOr404 = async (req: FastifyRequest): Promise<GroupSummary> => {
    const group = await findGroup(db, pathId(req.params, 'id', 'This group does not exist.'));
    if (!group) throw new NotFoundError('This group does not exist: another admin may have deleted it.');
    return group;
  };

  async function showGroup(req: FastifyRequest, reply: FastifyReply, group: GroupSummary, refusal?: GroupPageView['refusal'] & { status: number }) {
    const parsed = groupQuerySchema.safeParse(req.query ?? {});
    if (!parsed.success) throw new BadRequestError(parsed.error.issues[0]?.message ?? 'Bad query.');
    const { q, add_q: addQ, page } = parsed.data;
    const [{ members, total }, candidates, models] = await Promise.all([
      listMembers(db, group.id, { q, page }),
      group.managed ? [] : findUsersToAdd(db, group.id, addQ),
      listGroupModels(db, group.id),
    ]);
    const body = groupPage({ csrfToken: req.csrfToken(), group, members, total, q, page, addQ, candidates, models, groupsClaim, refusal });
    return reply.page({ title: group.name, body }, refusal?.status);
  }

  const back = (reply: FastifyReply, group: GroupSummary, anchor = '') => reply.redirect(`/admin/groups/${group.id}${anchor}`, 303);

  app.get('/admin/groups', async (req, reply) => {
    requireAdmin(req);
    return reply.page({ title: 'Groups', body: groupsPage({ csrfToken: req.csrfToken(), groups: await listGroups(db), groupsClaim }) });
  });

  app.post('/admin/groups', async (req, reply) => {
    const admin = requireAdmin(req);
    const form = parseBody(groupFormSchema, req.body);
    const refuse = (errors: Partial<Record<string, string>>) =>
      reply.page(
        {
          title: 'Groups',
          body: groupsPage({
            csrfToken: req.csrfToken(),
            groups: [],
            groupsClaim,
            values: { name: typed(req.body).name, managed: typed(req.body).managed !== undefined },
            errors,
          }),
        },
        400,
      );
    if (!form.ok) return refuse(form.errors);
    const { name, managed } = form.data;
    const id = await db.transaction().execute(async (trx) => {
      const created = await createGroup(trx, name, managed);
      if (created !== null) await writeAudit(trx, actorOf(req, admin), 'create-group', null, { id: created, group: name, managed });
      return created;
    });
    if (id === null) return refuse({ name: 'Another group already has this name.' });
    reply.flash('success', `Group “${name}” created.`);
    return reply.redirect(`/admin/groups/${id}`, 303);
  });

  app.get('/admin/groups/:id', async (req, reply) => {
    requireAdmin(req);
    return showGroup(req, reply, await findOr404(req));
  });

  app.post('/admin/groups/:id/settings', async (req, reply) => {
    const admin = requireAdmin(req);
    const group = await findOr404(req);
    const form = parseBody(groupFormSchema, req.body);
    const refuse = (errors: Partial<Record<string, string>>) =>
      showGroup(req, reply, group, { at: 'settings', message: 'Nothing was changed.', errors, values: typed(req.body), status: 400 });
    if (!form.ok) return refuse(form.errors);
    if (!(await updateGroup(db, group.id, form.data))) return refuse({ name: 'Another group already has this name.' });
    await writeAudit(db, actorOf(req, admin), 'update-group', null, { id: group.id, was: group.name, name: form.data.name, managed: form.data.managed });
    reply.flash('success', `Group “${form.data.name}” saved.`);
    return back(reply, group);
  });

  app.post('/admin/groups/:id/delete', async (req, reply) => {
    const admin = requireAdmin(req);
    const group = await findOr404(req);
    await db.transaction().execute(async (trx) => {
      await deleteGroup(trx, group.id);
      await writeAudit(trx, actorOf(req, admin), 'delete-group', null, {
        id: group.id,
        group: group.name,
        members: group.memberCount,
        models: group.modelCount,
      });
    });
    reply.flash('success', `Group “${group.name}” deleted.`);
    return reply.redirect('/admin/groups', 303);
  });

  app.post('/admin/groups/:id/limits', async (req, reply) => {
    const admin = requireAdmin(req);
    const group = await findOr404(req);
    const form = parseBody(limitsSchema, req.body);
    if (!form.ok)
      return showGroup(req, reply, group, { at: 'limits', message: 'Nothing was changed.', errors: form.errors, values: typed(req.body), status: 400 });
    await db.transaction().execute(async (trx) => {
      await setGroupLimits(trx, group.id, form.data);
      await writeAudit(trx, actorOf(req, admin), 'group-limits', null, { id: group.id, group: group.name, limits: limitsSummary(form.data) });
    });
    reply.flash('success', `Limits of “${group.name}” saved: ${limitsSummary(form.data)}.`);
    return back(reply, group, '#limits');
  });

  for (const [path, add] of [
    ['/admin/groups/:id/members', true],
    ['/admin/groups/:id/members/remove', false],
  ] as const) {
    app.post(path, async (req, reply) => {
      const admin = requireAdmin(req);
      const group = await findOr404(req);
      const at = add ? 'add' : 'members';
      if (group.managed) return showGroup(req, reply, group, { at, message: MANAGED_REFUSAL, status: 409 });
      const form = parseBody(membersSchema, req.body);
      if (!form.ok) return showGroup(req, reply, group, { at, message: form.errors.user_ids ?? 'Select at least one user.', status: 400 });
      let changed: number;
      try {
        changed = await changeMembers(db, actorOf(req, admin), group, form.data.user_ids, add);
      } catch (err) {
        const refused = formRefusal(err);
        if (!refused) throw err;
        return showGroup(req, reply, group, { at, message: refused.message, status: refused.status });
      }
      reply.flash('success', `${changed} ${changed === 1 ? 'person' : 'people'} ${add ? 'added to' : 'removed from'} “${group.name}”.`);
      return back(reply, group, '#members');
    });
  }
}

/**
 * Adds or removes members with one audit row per person changed, in one transaction; the group's managed flag is
 * read again under a lock, so a group marked "managed by sign-in" meanwhile refuses (409) instead of taking a change.
 */
export async function changeMembers(
  db: Db,
  actor: ReturnType<typeof actorOf>,
  group: { id: number; name: string },
  userIds: number[],
  add: boolean,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const current = await trx.selectFrom('chatbot_schema.user_group').select('is_managed').where('idgroup', '=', group.id).forUpdate().executeTakeFirst();
    if (!current) throw new NotFoundError('This group does not exist: another admin may have deleted it.');
    if (current.is_managed) throw new ConflictError(MANAGED_REFUSAL);
    const changed = add ? await addMembers(trx, group.id, userIds) : await removeMembers(trx, group.id, userIds);
    await writeAudit(trx, actor, add ? 'add-to-group' : 'remove-from-group', changed, { id: group.id, group: group.name });
    return changed.length;
  });
}
