import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { syncManagedGroups } from '../groups/group-queries.ts';
import { displayNameFromClaim } from '../http/display-name.ts';
import { NotFoundError } from '../http/errors.ts';
import { parseBody } from '../http/validation.ts';
import { changeEmailIfFree, createUser, EmailTakenError, findUserByEmail, findUserById, normalizeEmail, uniqueUsername } from '../users/user-queries.ts';
import { GoogleClient, OidcFailure, type VerifiedIdentity } from './google-client.ts';
import { claimUnusedAccount, findUserByIdentity, linkIdentity, touchIdentity } from './google-queries.ts';
import { GoogleState } from './google-state.ts';
import { linkGooglePage } from './google-views.ts';
import { requireAnonymous, requireUser } from './guards.ts';
import { PASSWORD_MAX_CHARS, verifyPassword } from './passwords.ts';
import { ACCOUNT_DEACTIVATED_MESSAGE, completeSignIn, nextFromQuery, safeNext } from './sign-in.ts';
import { ACCOUNT_PASSWORD_RULE, clearFailures, IP_PASSWORD_RULE, passwordThrottleKey, releaseAttempt, reserveAttempts } from './throttle.ts';

/** The same words as a deactivated account's password sign-in gets from completeSignIn. */
const DEACTIVATED = ACCOUNT_DEACTIVATED_MESSAGE;

const linkSchema = z.object({
  password: z
    .string()
    .min(1)
    .max(PASSWORD_MAX_CHARS * 4),
});

class IdentityTakenError extends Error {}

/** Where a link of an account with 2FA is finished, once the second step has been passed. */
const LINK_COMPLETE_PATH = '/login/google/link/complete';

/**
 * GET /login/google starts the authorization code flow; GET /login/google/authorized finishes it with three outcomes:
 * a known identity signs in, an unknown one with a free verified e-mail gets a new account (role User; Admin when it
 * is the first account ever), an unknown one whose e-mail has a local account is sent to /login/google/link to prove
 * the password first. Every refusal lands on /login with a readable message and one log line with a reason code.
 * The routes exist whether or not Google is configured (404 when not), so the authorization matrix sees them.
 */
export async function googleRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const client = config.OIDC_CLIENT_ID ? new GoogleClient(config) : undefined;
  const state = new GoogleState(config.APP_SECRET, config.secureCookies);
  const allowedDomains = new Set(config.OIDC_ALLOWED_DOMAINS);
  /** What the button and the messages call the provider ("Google", or OIDC_NAME). */
  const name = config.OIDC_NAME;

  const requireGoogle = (): GoogleClient => {
    if (!client) throw new NotFoundError(`${name} sign-in is not configured on this server.`);
    return client;
  };

  /** Back to the sign-in page with the message; the reason code goes to the log, never a token or a code. */
  const refuse = (req: FastifyRequest, reply: FastifyReply, reason: string, message: string, next?: string) => {
    req.log.warn({ reason }, 'google sign-in refused');
    app.metrics.signInFailed('google');
    reply.flash('danger', message);
    return reply.redirect(next ? `/login?next=${encodeURIComponent(next)}` : '/login', 303);
  };

  app.get('/login/google', async (req, reply) => {
    requireAnonymous(req);
    const google = requireGoogle();
    const next = nextFromQuery(req);
    let started: Awaited<ReturnType<GoogleClient['start']>>;
    try {
      started = await google.start();
    } catch (err) {
      if (err instanceof OidcFailure) return refuse(req, reply, err.reason, err.message, next);
      throw err;
    }
    state.saveFlow(reply, { state: started.state, nonce: started.nonce, codeVerifier: started.codeVerifier, next });
    return reply.redirect(started.url.toString(), 302);
  });

  app.get('/login/google/authorized', async (req, reply) => {
    // The query holds the authorization code and state, for the exchange; every log line redacts them (log-redaction.ts).
    const callbackUrl = new URL(req.url, config.PUBLIC_URL);
    requireAnonymous(req);
    const google = requireGoogle();
    const query = req.query as Record<string, unknown>;
    if (!GoogleState.isStateShaped(query.state)) {
      return refuse(req, reply, 'state_missing', `This sign-in link is not valid. Start again with "Sign in with ${name}".`);
    }
    const flow = state.takeFlow(req, reply, query.state);
    if (!flow.ok) {
      return refuse(req, reply, flow.reason, `This sign-in has expired or was started in another browser. Start again with "Sign in with ${name}".`);
    }
    const { next } = flow.value;
    if (query.error !== undefined) {
      const cancelled = query.error === 'access_denied';
      return refuse(
        req,
        reply,
        cancelled ? 'provider_access_denied' : 'provider_error',
        cancelled ? `${name} sign-in was cancelled.` : `${name} could not sign you in. Try again.`,
        next,
      );
    }
    let identity: VerifiedIdentity;
    try {
      identity = await google.finish(callbackUrl, flow.value);
    } catch (err) {
      if (err instanceof OidcFailure) return refuse(req, reply, err.reason, err.message, next);
      throw err;
    }
    if (allowedDomains.size > 0 && !allowedDomains.has(domainOf(identity, config.OIDC_DOMAIN_CLAIM) ?? '')) {
      return refuse(req, reply, 'domain_refused', `This ${name} account is not from an organisation allowed on this server.`, next);
    }
    return signInWithIdentity(req, reply, identity, next);
  });

  async function signInWithIdentity(req: FastifyRequest, reply: FastifyReply, identity: VerifiedIdentity, next: string | undefined): Promise<FastifyReply> {
    const key = { issuer: identity.issuer, subject: identity.subject };
    const known = await findUserByIdentity(db, key);
    if (known) {
      await touchIdentity(db, key, identity.email);
      await followGroupsClaim(req, known.id, identity);
      // The address changed at Google: follow it, unless another account has it (then the account keeps its own).
      if (identity.email && identity.emailVerified && normalizeEmail(identity.email) !== normalizeEmail(known.email)) {
        await changeEmailIfFree(db, known.id, identity.email);
      }
      return completeSignIn(req, reply, known, { method: 'google', next });
    }
    // An identity we have never seen: the address is all we could go on, and only if Google verified it.
    if (!identity.email || !identity.emailVerified) {
      return refuse(req, reply, 'email_unverified', `Your ${name} account has no verified e-mail address, so it cannot be used to sign in here.`, next);
    }
    const existing = await findUserByEmail(db, identity.email);
    if (existing) return offerLink(req, reply, identity, existing.id, next);
    if (config.REGISTRATION === 'closed') {
      return refuse(
        req,
        reply,
        'registration_closed',
        `This server does not accept new accounts. Ask an administrator to create yours, then sign in with ${name}.`,
        next,
      );
    }
    const email = identity.email;
    let created: { id: number; isAdmin: boolean };
    try {
      const username = await uniqueUsername(db, displayNameFromClaim(identity.name) ?? displayNameFromClaim(email.split('@')[0]) ?? 'user');
      created = await createUser(db, { username, email, passwordHash: null }, async (trx, userId) => {
        if (!(await linkIdentity(trx, userId, key, email))) throw new IdentityTakenError();
      });
    } catch (err) {
      // A concurrent first sign-in with this identity (or this address) got there first: use what it made.
      if (!(err instanceof EmailTakenError || err instanceof IdentityTakenError)) throw err;
      return signInWithIdentity(req, reply, identity, next);
    }
    await followGroupsClaim(req, created.id, identity);
    reply.flash('success', created.isAdmin ? 'Welcome! As the first account, you are the administrator of this server.' : 'Welcome! Your account is ready.');
    return completeSignIn(req, reply, { id: created.id, isActive: true, is2faEnabled: false, hasPasskey: false }, { method: 'google', next });
  }

  /** Membership of the groups managed by sign-in follows the groups claim, at every sign-in (docs/decisions/016). */
  async function followGroupsClaim(req: FastifyRequest, userId: number, identity: VerifiedIdentity): Promise<void> {
    if (identity.groups === null) return;
    const { added, removed } = await syncManagedGroups(db, userId, identity.groups);
    if (added.length > 0 || removed.length > 0) req.log.info({ userId, added, removed }, 'managed groups followed the sign-in');
  }

  async function offerLink(req: FastifyRequest, reply: FastifyReply, identity: VerifiedIdentity, userId: number, next: string | undefined) {
    const user = await findUserById(db, userId);
    if (!user?.isActive) return refuse(req, reply, 'account_deactivated', DEACTIVATED, next);
    if (!user.passwordHash) {
      if (await claimUnusedAccount(db, user.id, { issuer: identity.issuer, subject: identity.subject }, user.email)) {
        req.log.info({ userId: user.id }, 'google identity linked to an account an administrator created');
        await followGroupsClaim(req, user.id, identity);
        return completeSignIn(req, reply, user, { method: 'google', next });
      }
      return refuse(req, reply, 'link_no_password', 'An account with this e-mail exists and is linked to another sign-in. Ask an administrator.', next);
    }
    state.saveLink(reply, { issuer: identity.issuer, subject: identity.subject, email: user.email, userId: user.id, next });
    return reply.redirect('/login/google/link', 303);
  }

  const showLink = (req: FastifyRequest, reply: FastifyReply, email: string, status = 200, error?: string) =>
    reply.page({ title: `Link your ${name} account`, body: linkGooglePage({ csrfToken: req.csrfToken(), email, error, providerName: name }) }, status);

  app.get('/login/google/link', async (req, reply) => {
    requireAnonymous(req);
    requireGoogle();
    const link = state.readLink(req);
    if (!link.ok) return refuse(req, reply, `link_${link.reason}`, `The ${name} link request has expired. Start again with "Sign in with ${name}".`);
    return showLink(req, reply, link.value.email);
  });

  app.post('/login/google/link', async (req, reply) => {
    requireAnonymous(req);
    requireGoogle();
    const link = state.readLink(req);
    if (!link.ok) return refuse(req, reply, `link_${link.reason}`, `The ${name} link request has expired. Start again with "Sign in with ${name}".`);
    const { email, userId, next } = link.value;
    const form = parseBody(linkSchema, req.body);
    if (!form.ok) return showLink(req, reply, email, 400, 'Enter the password of this account.');

    // The same counters as POST /login: linking is a password guess like any other.
    const accountKey = passwordThrottleKey(email);
    const ipKey = `ip:${req.ip}`;
    const reserved = await reserveAttempts(db, [
      [ipKey, IP_PASSWORD_RULE],
      [accountKey, ACCOUNT_PASSWORD_RULE],
    ]);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      const minutes = Math.ceil(reserved.retryAfterS / 60);
      return showLink(req, reply, email, 429, `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`);
    }
    const user = await findUserById(db, userId);
    // The account must still be the one the address named when Google came back.
    const ok = Boolean(
      user?.passwordHash && normalizeEmail(user.email) === normalizeEmail(email) && (await verifyPassword(user.passwordHash, form.data.password)),
    );
    if (!ok || !user) {
      app.metrics.signInFailed('password');
      return showLink(req, reply, email, 401, 'Wrong password.');
    }
    await clearFailures(db, accountKey);
    await releaseAttempt(db, ipKey, IP_PASSWORD_RULE);
    const hasSecondFactor = user.is2faEnabled || user.hasPasskey;
    if (!hasSecondFactor) state.clearLink(reply);
    if (!user.isActive) return refuse(req, reply, 'account_deactivated', DEACTIVATED, next);
    if (hasSecondFactor) {
      // Linking must pass the second factor (code or passkey) too, or every later Google sign-in would skip it (TOTP_FOR_OAUTH=false):
      // the password starts a sign-in that needs the code, and the identity is added after it, at LINK_COMPLETE_PATH.
      state.saveLink(reply, { ...withoutExp(link.value), passwordProven: true });
      return completeSignIn(req, reply, user, { method: 'password', next: LINK_COMPLETE_PATH });
    }
    const linked = await linkIdentity(db, user.id, { issuer: link.value.issuer, subject: link.value.subject }, email);
    if (!linked) {
      const owner = await findUserByIdentity(db, { issuer: link.value.issuer, subject: link.value.subject });
      if (owner?.id !== user.id) return refuse(req, reply, 'link_identity_taken', `This ${name} account is already linked to another account.`, next);
    }
    req.log.info({ userId: user.id }, 'google identity linked');
    reply.flash('success', `${name} is now linked to your account.`);
    return completeSignIn(req, reply, user, { method: 'google', next: safeNext(next) });
  });

  /** After the second step of a 2FA account's link: the person is signed in now, with password and code. */
  app.get(LINK_COMPLETE_PATH, async (req, reply) => {
    const user = requireUser(req);
    requireGoogle();
    const link = state.readLink(req);
    state.clearLink(reply);
    if (!link.ok || !link.value.passwordProven || link.value.userId !== user.userId) {
      req.log.warn({ reason: link.ok ? 'link_not_proven' : `link_${link.reason}` }, 'google link not completed');
      reply.flash('warning', `${name} was not linked: the request expired. Sign in with ${name} again to link it.`);
      return reply.redirect('/chat', 303);
    }
    const key = { issuer: link.value.issuer, subject: link.value.subject };
    if (!(await linkIdentity(db, user.userId, key, link.value.email)) && (await findUserByIdentity(db, key))?.id !== user.userId) {
      reply.flash('danger', `This ${name} account is already linked to another account.`);
      return reply.redirect('/chat', 303);
    }
    req.log.info({ userId: user.userId }, 'google identity linked');
    reply.flash('success', `${name} is now linked to your account.`);
    return reply.redirect(safeNext(link.value.next) ?? '/chat', 303);
  });
}

/**
 * The domain OIDC_ALLOWED_DOMAINS is checked against. Google: the signed `hd` claim (its Workspace domain), never the
 * address's suffix, since a personal Google account can be made with an address of any domain. Other providers have
 * no `hd`: the domain of the address they verified (they vouch for their own users' addresses).
 */
export function domainOf(identity: VerifiedIdentity, claim: 'hd' | 'email'): string | undefined {
  if (claim === 'hd') return identity.hostedDomain ?? undefined;
  if (!identity.email || !identity.emailVerified) return undefined;
  return identity.email.slice(identity.email.lastIndexOf('@') + 1).toLowerCase();
}

function withoutExp<T extends { exp: number }>(value: T): Omit<T, 'exp'> {
  const { exp: _exp, ...rest } = value;
  return rest;
}
