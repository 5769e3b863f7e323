import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listApiKeys, revokeApiKey } from '../api/api-key-queries.ts';
import { requireAdmin } from '../auth/guards.ts';
import { removeAllPasskeys } from '../auth/passkey-queries.ts';
import { hashPassword, PASSWORD_MAX_CHARS, passwordProblem } from '../auth/passwords.ts';
import { invalidateUserSessions, type SessionUser } from '../auth/sessions.ts';
import { resetTwoFactor } from '../auth/totp-queries.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { getUserLimits, listUserGroups, setUserLimits } from '../groups/group-queries.ts';
import { usageStatus } from '../groups/usage-limits.ts';
import { displayNameField } from '../http/display-name.ts';
import { NotFoundError } from '../http/errors.ts';
import { formString, parseBody, pathId } from '../http/validation.ts';
import { createUser, EmailTakenError, grantAdmin } from '../users/user-queries.ts';
import { html } from '../views/html.ts';
import { actorOf, flashOutcome } from './action-replies.ts';
import { listAudit, writeAudit } from './audit-queries.ts';
import { limitsSchema, limitsSummary } from './limits-form.ts';
import { applyUserAction } from './user-actions.ts';
import { createResetLink, findUserDetail, listUserSessions, RESET_LINK_TTL_MS, revokeSession, usageLast30Days } from './user-detail-queries.ts';
import { type DetailRefusal, type NewUserValues, newUserPage, resetLinkPage, userDetailPage } from './user-detail-views.ts';
import { type UserLimitsView, userLimitsSection } from './user-limits-views.ts';

const newUserSchema = z.object({
  username: displayNameField('Username', 'Enter a username.'),
  email: formString(254, 'E-mail')
    .transform((v) => v.trim())
    .pipe(z.email('Enter an e-mail address like name@example.com.')),
  role: z.enum(['user', 'admin'], { error: 'Choose User or Admin.' }).default('user'),
  signIn: z.enum(['password', 'google'], { error: 'Choose a password or Google only.' }).default('password'),
  password: z
    .string({ error: 'The password must be given once.' })
    .max(PASSWORD_MAX_CHARS * 4, 'Use at most 128 characters.')
    .optional(),
});

const sessionIdSchema = z.object({ session: z.string().regex(/^[0-9a-f]{64}$/, 'This session does not exist.') });

/**
 * A user's page. After a refused form (a self-demotion, a reset link for a deactivated account, a session that is
 * gone), the same page with the message beside the actions or the sessions, answered with the refusal's status.
 */
export async function renderUserPage(
  db: Db,
  req: FastifyRequest,
  reply: FastifyReply,
  admin: SessionUser,
  id: number,
  refusal?: DetailRefusal & { status: number },
  limitsRefusal?: UserLimitsView['refusal'],
): Promise<FastifyReply> {
  const user = await findUserDetail(db, id);
  if (!user) throw new NotFoundError('This user does not exist.');
  const [sessions, usage, audit, groups, own, status, apiKeys] = await Promise.all([
    listUserSessions(db, user.id),
    usageLast30Days(db, user.id),
    listAudit(db, { targetId: user.id, page: 1 }, 20),
    listUserGroups(db, user.id),
    getUserLimits(db, user.id),
    usageStatus(db, user.id),
    req.server.apiKeysEnabled ? listApiKeys(db, user.id) : null,
  ]);
  const page = userDetailPage({
    csrfToken: req.csrfToken(),
    user,
    selfId: admin.userId,
    sessions,
    usage,
    audit: audit.rows,
    canReset2fa: true,
    refusal,
    apiKeys,
  });
  const limits = userLimitsSection({ csrfToken: req.csrfToken(), userId: user.id, groups, own, status, refusal: limitsRefusal });
  return reply.page({ title: user.username, body: html`${page}${limits}` }, limitsRefusal ? 400 : refusal?.status);
}

export async function userDetailRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;

  const findOr404 = async (id: number) => {
    const user = await findUserDetail(db, id);
    if (!user) throw new NotFoundError('This user does not exist.');
    return user;
  };
  const userId = (params: unknown) => pathId(params, 'id', 'This user does not exist.');

  app.post('/admin/users/:id/limits', async (req, reply) => {
    const admin = requireAdmin(req);
    const user = await findOr404(userId(req.params));
    const form = parseBody(limitsSchema, req.body);
    if (!form.ok) {
      const values = Object.fromEntries(
        Object.entries((req.body ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'),
      );
      return renderUserPage(db, req, reply, admin, user.id, undefined, { errors: form.errors, values });
    }
    await db.transaction().execute(async (trx) => {
      await setUserLimits(trx, user.id, form.data);
      await writeAudit(trx, actorOf(req, admin), 'user-limits', [{ id: user.id, username: user.username }], { limits: limitsSummary(form.data) });
    });
    reply.flash('success', `Own limits of “${user.username}” saved: ${limitsSummary(form.data)}.`);
    return reply.redirect(`/admin/users/${user.id}#groups`, 303);
  });

  app.get('/admin/users/new', async (req, reply) => {
    requireAdmin(req);
    return reply.page({ title: 'Add a user', body: newUserPage({ csrfToken: req.csrfToken(), values: {}, errors: {} }) });
  });

  app.post('/admin/users/new', async (req, reply) => {
    const admin = requireAdmin(req);
    const raw = (req.body ?? {}) as Record<string, unknown>;
    const text = (k: string) => (typeof raw[k] === 'string' ? raw[k] : undefined);
    const values: NewUserValues = { username: text('username'), email: text('email'), role: text('role'), signIn: text('signIn') };
    const again = (errors: Partial<Record<string, string>>) =>
      reply.page({ title: 'Add a user', body: newUserPage({ csrfToken: req.csrfToken(), values, errors }) }, 400);
    const form = parseBody(newUserSchema, req.body);
    if (!form.ok) return again(form.errors);
    const { username, email, role, signIn, password } = form.data;
    let passwordHash: string | null = null;
    if (signIn === 'password') {
      const problem = passwordProblem(password ?? '');
      if (problem) return again({ password: problem });
      passwordHash = await hashPassword(password ?? '');
    }
    const actor = actorOf(req, admin);
    try {
      const created = await createUser(db, { username, email, passwordHash }, async (trx, id) => {
        if (role === 'admin') await grantAdmin(trx, id);
        await writeAudit(trx, actor, 'create-user', [{ id, username }], { role, signIn });
      });
      reply.flash('success', `Account “${username.slice(0, 60)}” created${signIn === 'google' ? ': they sign in with Google using this e-mail' : ''}.`);
      return reply.redirect(`/admin/users/${created.id}`, 303);
    } catch (err) {
      if (err instanceof EmailTakenError) return again({ email: 'An account with this e-mail already exists.' });
      throw err;
    }
  });

  app.get('/admin/users/:id', async (req, reply) => {
    const admin = requireAdmin(req);
    return renderUserPage(db, req, reply, admin, userId(req.params));
  });

  app.post('/admin/users/:id/sign-out-everywhere', async (req, reply) => {
    const admin = requireAdmin(req);
    const id = userId(req.params);
    flashOutcome(reply, 'sign-out-everywhere', await applyUserAction(db, actorOf(req, admin), 'sign-out-everywhere', [id]));
    return reply.redirect(`/admin/users/${id}`, 303);
  });

  app.post('/admin/users/:id/sessions/revoke', async (req, reply) => {
    const admin = requireAdmin(req);
    const id = userId(req.params);
    const form = sessionIdSchema.safeParse(req.body ?? {});
    if (!form.success) return renderUserPage(db, req, reply, admin, id, { at: 'sessions', status: 400, message: 'This session does not exist.' });
    const revoked = await revokeSession(db, actorOf(req, admin), id, form.data.session);
    reply.flash(revoked ? 'success' : 'info', revoked ? 'Session revoked: that browser is signed out.' : 'That session had already ended.');
    return reply.redirect(`/admin/users/${id}`, 303);
  });

  if (config.API_KEYS)
    app.post('/admin/users/:id/api-keys/:keyId/revoke', async (req, reply) => {
      const admin = requireAdmin(req);
      const user = await findOr404(userId(req.params));
      const revoked = await revokeApiKey(db, actorOf(req, admin), { id: user.id, username: user.username }, pathId(req.params, 'keyId'));
      reply.flash(revoked ? 'success' : 'info', revoked ? 'API key revoked: calls with it are refused from now on.' : 'That key was revoked already.');
      return reply.redirect(`/admin/users/${user.id}`, 303);
    });

  app.post('/admin/users/:id/reset-2fa', async (req, reply) => {
    const admin = requireAdmin(req);
    const user = await findOr404(userId(req.params));
    // resetTwoFactor (src/auth/totp-queries.ts) runs its own transaction (2FA cleared, sessions ended); the audit row
    // follows it. Written after, so a row never claims a reset that did not happen.
    await resetTwoFactor(db, user.id);
    await writeAudit(db, actorOf(req, admin), 'reset-2fa', [{ id: user.id, username: user.username }], {});
    reply.flash('success', `Two-factor authentication of “${user.username.slice(0, 60)}” reset: they are signed out and can enrol again.`);
    return reply.redirect(`/admin/users/${user.id}`, 303);
  });

  // For a lost or stolen passkey: every passkey of the account goes, and every session (one may have been opened with it).
  app.post('/admin/users/:id/remove-passkeys', async (req, reply) => {
    const admin = requireAdmin(req);
    const user = await findOr404(userId(req.params));
    const removed = await db.transaction().execute(async (trx) => {
      const count = await removeAllPasskeys(trx, user.id);
      await invalidateUserSessions(trx, user.id);
      await writeAudit(trx, actorOf(req, admin), 'remove-passkeys', [{ id: user.id, username: user.username }], { count });
      return count;
    });
    reply.flash('success', `${removed === 1 ? 'One passkey' : `${removed} passkeys`} of “${user.username.slice(0, 60)}” removed: they are signed out.`);
    return reply.redirect(`/admin/users/${user.id}`, 303);
  });

  app.post('/admin/users/:id/reset-link', async (req, reply) => {
    const admin = requireAdmin(req);
    const user = await findOr404(userId(req.params));
    if (!user.isActive)
      return renderUserPage(db, req, reply, admin, user.id, {
        at: 'actions',
        status: 400,
        message: 'Reactivate the account first: a reset link does not open a deactivated account.',
      });
    const token = await createResetLink(db, actorOf(req, admin), user.id);
    const link = `${config.PUBLIC_URL.replace(/\/+$/, '')}/reset-password/${token}`;
    return reply.page({ title: 'Password reset link', body: resetLinkPage({ user, link, validMinutes: RESET_LINK_TTL_MS / 60_000 }) });
  });
}
