import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listIdentities, unlinkIdentityIfPasswordSet } from '../auth/google-queries.ts';
import { requireUser } from '../auth/guards.ts';
import { hashPassword, PASSWORD_MAX_CHARS, passwordProblem, verifyPassword } from '../auth/passwords.ts';
import type { SessionUser } from '../auth/sessions.ts';
import { ACCOUNT_PASSWORD_RULE, clearFailures, passwordThrottleKey, reserveAttempt } from '../auth/throttle.ts';
import { readTotpState } from '../auth/totp-queries.ts';
import type { Db } from '../db/database.ts';
import { listUserGroups } from '../groups/group-queries.ts';
import { displayNameField } from '../http/display-name.ts';
import { formString, parseBody } from '../http/validation.ts';
import { findUserById } from '../users/user-queries.ts';
import type { SafeHtml } from '../views/html.ts';
import { readAttachmentStorage } from './attachment-storage.ts';
import { changePassword, listOwnSessions, revokeOtherSessions, revokeOwnSession, setDisplayName, setFirstPassword } from './settings-queries.ts';
import { type FieldErrors, settingsPage } from './settings-views.ts';

const profileSchema = z.object({
  username: displayNameField('Name', 'Enter your name.'),
});

const newPasswordSchema = z.object({
  new_password: z.string({ message: 'Choose a password.' }).max(PASSWORD_MAX_CHARS * 4, `Use at most ${PASSWORD_MAX_CHARS} characters.`),
});

const passwordSchema = z.object({
  current_password: z
    .string({ message: 'Enter your current password.' })
    .min(1, 'Enter your current password.')
    .max(PASSWORD_MAX_CHARS * 4),
  new_password: z.string({ message: 'Choose a new password.' }).max(PASSWORD_MAX_CHARS * 4, `Use at most ${PASSWORD_MAX_CHARS} characters.`),
});

// A session key is the hex SHA-256 of its token (sessions.ts).
const unlinkSchema = z.object({ issuer: formString(500, 'Issuer'), subject: formString(255, 'Subject') });

const revokeSchema = z.object({ session: z.string().regex(/^[0-9a-f]{64}$/, 'Not a session.') });

/** One's own account: name, password, sessions, and the way to the 2FA page. */
export async function settingsRoutes(
  app: FastifyInstance,
  opts: { db: Db; localLogin: boolean; transferSection?: { render: (csrfToken: string) => SafeHtml; script: () => string } },
): Promise<void> {
  const { db, localLogin, transferSection } = opts;

  const show = async (req: FastifyRequest, reply: FastifyReply, user: SessionUser, status = 200, extra: { errors?: FieldErrors; error?: string } = {}) => {
    const [account, sessions, totp, identities, groups, attachmentStorage] = await Promise.all([
      findUserById(db, user.userId),
      listOwnSessions(db, user.userId),
      readTotpState(db, user.userId),
      listIdentities(db, user.userId),
      listUserGroups(db, user.userId),
      readAttachmentStorage(db, user.userId),
    ]);
    return reply.page(
      {
        title: 'Settings',
        scripts: transferSection ? [transferSection.script()] : [],
        body: settingsPage({
          csrfToken: req.csrfToken(),
          username: account?.username ?? user.username,
          email: user.email,
          hasPassword: Boolean(account?.passwordHash),
          canSetPassword: localLogin,
          currentSessionId: user.sessionId,
          sessions,
          twoFactor: { enabled: Boolean(totp?.enabled), recoveryCodesLeft: totp?.unusedRecoveryCodes ?? 0 },
          identities,
          groups: groups.map((g) => g.name),
          apiKeys: req.server.apiKeysEnabled,
          transferSection: transferSection?.render(req.csrfToken()),
          attachmentStorage,
          ...extra,
        }),
      },
      status,
    );
  };

  app.get('/settings', async (req, reply) => show(req, reply, requireUser(req)));

  app.post('/settings/profile', async (req, reply) => {
    const user = requireUser(req);
    const form = parseBody(profileSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { errors: form.errors });
    await setDisplayName(db, user.userId, form.data.username);
    reply.flash('success', 'Your name is saved.');
    return reply.redirect('/settings', 303);
  });

  app.post('/settings/password', async (req, reply) => {
    const user = requireUser(req);
    const form = parseBody(passwordSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { errors: form.errors });
    const problem = passwordProblem(form.data.new_password);
    if (problem) return show(req, reply, user, 400, { errors: { new_password: problem } });
    const account = await findUserById(db, user.userId);
    if (!account?.passwordHash) return show(req, reply, user, 400, { error: 'This account has no password to change.' });
    // The same counter as the sign-in form: a stolen session must not become a way to guess the password.
    const key = passwordThrottleKey(account.email);
    const reserved = await reserveAttempt(db, key, ACCOUNT_PASSWORD_RULE);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return show(req, reply, user, 429, { error: 'Too many wrong passwords. Try again later.' });
    }
    if (!(await verifyPassword(account.passwordHash, form.data.current_password))) {
      return show(req, reply, user, 401, { errors: { current_password: 'That is not your current password.' } });
    }
    await clearFailures(db, key);
    await changePassword(db, user.userId, await hashPassword(form.data.new_password), user.sessionId);
    reply.flash('success', 'Your password is changed. Your other sessions were signed out.');
    return reply.redirect('/settings', 303);
  });

  // A Google-only account may add a password while password sign-in is on (the account then has two ways in, and
  // Google can be unlinked). Only an account without one: changing an existing password needs the current one.
  app.post('/settings/password/new', async (req, reply) => {
    const user = requireUser(req);
    if (!localLogin) return show(req, reply, user, 403, { error: 'Password sign-in is turned off on this server.' });
    const form = parseBody(newPasswordSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { errors: form.errors });
    const problem = passwordProblem(form.data.new_password);
    if (problem) return show(req, reply, user, 400, { errors: { new_password: problem } });
    const set = await setFirstPassword(db, user.userId, await hashPassword(form.data.new_password), user.sessionId);
    if (!set) return show(req, reply, user, 409, { error: 'This account already has a password: change it with the current one.' });
    reply.flash('success', 'Your password is set: you can sign in with your e-mail address too. Your other sessions were signed out.');
    return reply.redirect('/settings', 303);
  });

  app.post('/settings/sessions/revoke', async (req, reply) => {
    const user = requireUser(req);
    const form = parseBody(revokeSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { error: 'Choose a session to revoke.' });
    if (form.data.session === user.sessionId) return show(req, reply, user, 400, { error: 'To end this session, sign out.' });
    const revoked = await revokeOwnSession(db, user.userId, form.data.session);
    reply.flash(revoked ? 'success' : 'info', revoked ? 'The session is signed out.' : 'That session had already ended.');
    return reply.redirect('/settings', 303);
  });

  // Only while the account keeps a password: unlinking its only way in would lock the user out (one statement decides).
  app.post('/settings/google/unlink', async (req, reply) => {
    const user = requireUser(req);
    const form = parseBody(unlinkSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { error: 'Choose a linked account to unlink.' });
    const removed = await unlinkIdentityIfPasswordSet(db, user.userId, form.data);
    if (!removed) {
      const hasPassword = Boolean((await findUserById(db, user.userId))?.passwordHash);
      return hasPassword
        ? show(req, reply, user, 404, { error: 'That Google account is not linked to yours.' })
        : show(req, reply, user, 409, { error: 'This Google account is your only way to sign in: it cannot be unlinked.' });
    }
    reply.flash('success', 'The Google account is unlinked.');
    return reply.redirect('/settings', 303);
  });

  app.post('/settings/sessions/revoke-others', async (req, reply) => {
    const user = requireUser(req);
    const n = await revokeOtherSessions(db, user.userId, user.sessionId);
    reply.flash('success', n === 1 ? 'One other session was signed out.' : `${n} other sessions were signed out.`);
    return reply.redirect('/settings', 303);
  });
}
