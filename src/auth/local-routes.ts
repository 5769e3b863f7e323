import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { displayNameField } from '../http/display-name.ts';
import { ForbiddenError } from '../http/errors.ts';
import { formString, parseBody } from '../http/validation.ts';
import { createUser, EmailTakenError, findUserByEmail, setPasswordHash } from '../users/user-queries.ts';
import { assetUrl } from '../views/assets.ts';
import { requireAnonymous, requireSession, SECOND_FACTOR_PATH } from './guards.ts';
import { loginPage, registerPage, registrationClosedPage } from './local-views.ts';
import { passkeyButton } from './passkey-views.ts';
import { burnPasswordCheck, hashPassword, needsRehash, PASSWORD_MAX_CHARS, passwordProblem, verifyPassword } from './passwords.ts';
import { completeSignIn, nextFromQuery } from './sign-in.ts';
import {
  ACCOUNT_PASSWORD_RULE,
  clearFailures,
  IP_PASSWORD_RULE,
  IP_REGISTRATION_RULE,
  passwordThrottleKey,
  releaseAttempt,
  reserveAttempt,
  reserveAttempts,
} from './throttle.ts';

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
  username: displayNameField('Name', 'Enter your name.'),
  email: emailSchema,
  password: z.string({ message: 'Choose a password.' }).max(PASSWORD_MAX_CHARS * 4, 'Use at most 128 characters.'),
});

function minutes(seconds: number): string {
  const m = Math.ceil(seconds / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

export async function localAuthRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const googleEnabled = Boolean(config.OIDC_CLIENT_ID);
  const registrationOpen = config.LOCAL_LOGIN && config.REGISTRATION === 'open';

  const showLogin = (req: FastifyRequest, reply: FastifyReply, status: number, extra: { email?: string; error?: string } = {}) => {
    const next = nextFromQuery(req);
    return reply.page(
      {
        title: 'Sign in',
        scripts: [assetUrl('passkeys')],
        body: loginPage({
          csrfToken: req.csrfToken(),
          localLogin: config.LOCAL_LOGIN,
          registrationOpen,
          googleEnabled,
          providerName: config.OIDC_NAME,
          next,
          passkey: passkeyButton({
            csrfToken: req.csrfToken(),
            relyingParty: config.relyingParty,
            action: 'passkey-sign-in',
            optionsUrl: '/login/passkey/options',
            postUrl: next ? `/login/passkey?next=${encodeURIComponent(next)}` : '/login/passkey',
            label: 'Sign in with a passkey',
            autofill: config.LOCAL_LOGIN,
          }),
          ...extra,
        }),
      },
      status,
    );
  };

  app.get('/', async (req, reply) => reply.redirect(req.user ? '/chat' : req.session ? SECOND_FACTOR_PATH : '/login', 302));

  app.get('/login', async (req, reply) => {
    requireAnonymous(req);
    return showLogin(req, reply, 200);
  });

  app.post('/login', async (req, reply) => {
    // A browser half-way through another sign-in (waiting for a second factor) may start over.
    requireAnonymous(req, { allowPending: true });
    if (!config.LOCAL_LOGIN) throw new ForbiddenError('Password sign-in is turned off on this server.');
    const next = nextFromQuery(req);
    const form = parseBody(loginSchema, req.body);
    if (!form.ok) return showLogin(req, reply, 400, { error: 'Enter your e-mail address and password.' });
    const { email, password } = form.data;
    const accountKey = passwordThrottleKey(email);
    const ipKey = `ip:${req.ip}`;

    // Reserved before argon2 runs, so however many guesses arrive at once, no more are verified than the rules allow.
    const reserved = await reserveAttempts(db, [
      [ipKey, IP_PASSWORD_RULE],
      [accountKey, ACCOUNT_PASSWORD_RULE],
    ]);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return showLogin(req, reply, 429, { email, error: `Too many failed attempts. Try again in ${minutes(reserved.retryAfterS)}.` });
    }

    const user = await findUserByEmail(db, email);
    const ok = user?.passwordHash ? await verifyPassword(user.passwordHash, password) : await burnPasswordCheck(password);
    // One answer for "no such account" and "wrong password": nothing to enumerate. The reserved attempts stay
    // counted as failures. A deactivated account is told so by completeSignIn, after every factor it has.
    if (!ok || !user) {
      app.metrics.signInFailed('password');
      return showLogin(req, reply, 401, { email, error: 'Wrong e-mail address or password.' });
    }
    await clearFailures(db, accountKey);
    await releaseAttempt(db, ipKey, IP_PASSWORD_RULE);
    if (user.passwordHash && needsRehash(user.passwordHash)) await setPasswordHash(db, user.id, await hashPassword(password));
    return completeSignIn(req, reply, user, { method: 'password', next });
  });

  app.post('/logout', async (req, reply) => {
    requireSession(req); // a half-signed-in visitor can sign out too
    await app.sessions.signOut(req, reply);
    reply.flash('info', 'You are signed out.');
    return reply.redirect('/login', 303);
  });

  app.get('/register', async (req, reply) => {
    requireAnonymous(req);
    if (!registrationOpen) return reply.page({ title: 'Registration closed', body: registrationClosedPage() }, 403);
    return reply.page({ title: 'Create account', body: registerPage({ csrfToken: req.csrfToken(), googleEnabled, providerName: config.OIDC_NAME }) });
  });

  app.post('/register', async (req, reply) => {
    requireAnonymous(req);
    if (!registrationOpen) return reply.page({ title: 'Registration closed', body: registrationClosedPage() }, 403);
    const raw = (req.body ?? {}) as Record<string, unknown>;
    const values = { username: typeof raw.username === 'string' ? raw.username : '', email: typeof raw.email === 'string' ? raw.email : '' };
    const show = (status: number, errors: Partial<Record<string, string>>, error?: string) =>
      reply.page(
        { title: 'Create account', body: registerPage({ csrfToken: req.csrfToken(), googleEnabled, providerName: config.OIDC_NAME, values, errors, error }) },
        status,
      );

    const form = parseBody(registerSchema, req.body);
    if (!form.ok) return show(400, form.errors);
    const problem = passwordProblem(form.data.password);
    if (problem) return show(400, { password: problem });

    // Every answer that says whether an e-mail has an account (created, or "already exists") is counted against
    // the address before it is given, so the form cannot be used to test a list of addresses.
    const reserved = await reserveAttempt(db, `reg:${req.ip}`, IP_REGISTRATION_RULE);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return show(429, {}, `Too many new accounts from your network. Try again in ${minutes(reserved.retryAfterS)}.`);
    }
    let created: { id: number; isAdmin: boolean };
    try {
      created = await createUser(db, { username: form.data.username, email: form.data.email, passwordHash: await hashPassword(form.data.password) });
    } catch (err) {
      if (err instanceof EmailTakenError) return show(409, { email: 'An account with this e-mail address already exists. Sign in instead.' });
      throw err;
    }
    reply.flash('success', created.isAdmin ? 'Welcome! As the first account, you are the administrator of this server.' : 'Welcome! Your account is ready.');
    return completeSignIn(req, reply, { id: created.id, isActive: true, is2faEnabled: false, hasPasskey: false }, { method: 'password' });
  });
}
