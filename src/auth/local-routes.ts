import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { ForbiddenError } from '../http/errors.ts';
import { formString, parseBody } from '../http/validation.ts';
import { createUser, EmailTakenError, findUserByEmail, normalizeEmail, recordSignIn, setPasswordHash } from '../users/user-queries.ts';
import { requireAnonymous, requireUser } from './guards.ts';
import { loginPage, registerPage, registrationClosedPage } from './local-views.ts';
import { burnPasswordCheck, hashPassword, needsRehash, PASSWORD_MAX_CHARS, passwordProblem, verifyPassword } from './passwords.ts';
import { ACCOUNT_PASSWORD_RULE, clearFailures, IP_PASSWORD_RULE, IP_REGISTRATION_RULE, recordFailure, secondsLocked } from './throttle.ts';

const emailSchema = formString(254, 'E-mail')
  .transform((v) => v.trim())
  .pipe(z.email('Enter a valid e-mail address.'));

const loginSchema = z.object({
  email: emailSchema,
  // Longer than the maximum is simply wrong; never truncated, never hashed (argon2 of megabytes is a DoS).
  password: z
    .string()
    .min(1)
    .max(PASSWORD_MAX_CHARS * 4),
});

const registerSchema = z.object({
  username: formString(50, 'Name')
    .transform((v) => v.trim())
    .pipe(z.string().min(1, 'Enter your name.')),
  email: emailSchema,
  password: z.string({ message: 'Choose a password.' }).max(PASSWORD_MAX_CHARS * 4, 'Use at most 128 characters.'),
});

const nextSchema = z.object({ next: z.string().optional() });

/** Only our own paths: `/chat/3`, never `//evil.example` or `https://…` (open redirect). */
function safeNext(next: string | undefined): string | undefined {
  return next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : undefined;
}

function minutes(seconds: number): string {
  const m = Math.ceil(seconds / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

export async function localAuthRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const googleEnabled = Boolean(config.GOOGLE_CLIENT_ID);
  const registrationOpen = config.LOCAL_LOGIN && config.REGISTRATION === 'open';

  const showLogin = (req: FastifyRequest, reply: FastifyReply, status: number, extra: { email?: string; error?: string } = {}) =>
    reply.page(
      {
        title: 'Sign in',
        body: loginPage({
          csrfToken: req.csrfToken(),
          localLogin: config.LOCAL_LOGIN,
          registrationOpen,
          googleEnabled,
          next: safeNext(nextSchema.parse(req.query).next),
          ...extra,
        }),
      },
      status,
    );

  app.get('/', async (req, reply) => reply.redirect(req.user ? '/chat' : '/login', 302));

  app.get('/login', async (req, reply) => {
    requireAnonymous(req);
    return showLogin(req, reply, 200);
  });

  app.post('/login', async (req, reply) => {
    requireAnonymous(req);
    if (!config.LOCAL_LOGIN) throw new ForbiddenError('Password sign-in is turned off on this server.');
    const form = parseBody(loginSchema, req.body);
    if (!form.ok) return showLogin(req, reply, 400, { error: 'Enter your e-mail address and password.' });
    const { email, password } = form.data;
    const accountKey = `pw:${normalizeEmail(email)}`;
    const ipKey = `ip:${req.ip}`;

    const locked = Math.max(await secondsLocked(db, accountKey), await secondsLocked(db, ipKey));
    if (locked > 0) {
      reply.header('retry-after', String(locked));
      return showLogin(req, reply, 429, { email, error: `Too many failed attempts. Try again in ${minutes(locked)}.` });
    }

    const user = await findUserByEmail(db, email);
    const ok = user?.passwordHash ? await verifyPassword(user.passwordHash, password) : await burnPasswordCheck(password);
    // One answer for "no such account", "wrong password" and "deactivated": nothing to enumerate.
    if (!ok || !user?.isActive) {
      await recordFailure(db, accountKey, ACCOUNT_PASSWORD_RULE);
      await recordFailure(db, ipKey, IP_PASSWORD_RULE);
      return showLogin(req, reply, 401, { email, error: 'Wrong e-mail address or password.' });
    }
    await clearFailures(db, accountKey);
    if (user.passwordHash && needsRehash(user.passwordHash)) await setPasswordHash(db, user.id, await hashPassword(password));
    await recordSignIn(db, user.id);
    await app.sessions.signIn(req, reply, user.id);
    return reply.redirect(safeNext(nextSchema.parse(req.query).next) ?? '/chat', 303);
  });

  app.post('/logout', async (req, reply) => {
    requireUser(req);
    await app.sessions.signOut(req, reply);
    reply.flash('info', 'You are signed out.');
    return reply.redirect('/login', 303);
  });

  app.get('/register', async (req, reply) => {
    requireAnonymous(req);
    if (!registrationOpen) return reply.page({ title: 'Registration closed', body: registrationClosedPage() }, 403);
    return reply.page({ title: 'Create account', body: registerPage({ csrfToken: req.csrfToken(), googleEnabled }) });
  });

  app.post('/register', async (req, reply) => {
    requireAnonymous(req);
    if (!registrationOpen) return reply.page({ title: 'Registration closed', body: registrationClosedPage() }, 403);
    const raw = (req.body ?? {}) as Record<string, unknown>;
    const values = { username: typeof raw.username === 'string' ? raw.username : '', email: typeof raw.email === 'string' ? raw.email : '' };
    const show = (status: number, errors: Partial<Record<string, string>>, error?: string) =>
      reply.page({ title: 'Create account', body: registerPage({ csrfToken: req.csrfToken(), googleEnabled, values, errors, error }) }, status);

    const ipKey = `reg:${req.ip}`;
    const locked = await secondsLocked(db, ipKey);
    if (locked > 0) {
      reply.header('retry-after', String(locked));
      return show(429, {}, `Too many new accounts from your network. Try again in ${minutes(locked)}.`);
    }
    const form = parseBody(registerSchema, req.body);
    if (!form.ok) return show(400, form.errors);
    const problem = passwordProblem(form.data.password);
    if (problem) return show(400, { password: problem });

    try {
      const created = await createUser(db, { username: form.data.username, email: form.data.email, passwordHash: await hashPassword(form.data.password) });
      await recordFailure(db, ipKey, IP_REGISTRATION_RULE); // counts creations, not failures
      await recordSignIn(db, created.id);
      await app.sessions.signIn(req, reply, created.id);
      reply.flash('success', created.isAdmin ? 'Welcome! As the first account, you are the administrator of this server.' : 'Welcome! Your account is ready.');
      return reply.redirect('/chat', 303);
    } catch (err) {
      if (err instanceof EmailTakenError) return show(409, { email: 'An account with this e-mail address already exists. Sign in instead.' });
      throw err;
    }
  });
}
