import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { findUserById } from '../users/user-queries.ts';
import { CONFIRM_PATH, requireAnonymous, requireSecondFactorPending, requireUser, SECOND_FACTOR_PATH } from './guards.ts';
import { type AssertionResult, authenticationOptions, verifyAssertion } from './passkey-ceremonies.ts';
import { type ChallengePurpose, issueChallenge, takeChallenge } from './passkey-challenges.ts';
import { assertionFormSchema, parseCredentialForm } from './passkey-form.ts';
import type { StoredPasskey } from './passkey-queries.ts';
import { recordProof } from './sessions.ts';
import { completeSignIn, nextFromQuery } from './sign-in.ts';
import { IP_PASSWORD_RULE, releaseAttempt, reserveAttempt } from './throttle.ts';

/** A passkey whose counter went backwards: buildApp writes the audit row (the admin slice owns the log). */
export type ClonedPasskeyReport = (req: FastifyRequest, passkey: StoredPasskey, counter: number) => Promise<void>;

const withNext = (path: string, next: string | undefined) => (next ? `${path}?next=${encodeURIComponent(next)}` : path);

/**
 * Passkey assertions, for the three things they prove (decision record 017):
 * - `/login/passkey`: a whole sign-in (the passkey is something held, its user verification a PIN or biometric), so it
 *   goes through completeSignIn with the second factor passed;
 * - `/login/2fa/passkey`: the second step after a password (or Google), for the pending session's own account only;
 * - `/settings/confirm/passkey`: the step-up's proof, for the signed-in account's own passkey only.
 * Each has an options route that stores a challenge bound to this browser (its session, or before sign-in its CSRF
 * cookie) and sends the options as JSON; the assertion comes back as an ordinary form post, so the answer is a
 * redirect with a flash like every other sign-in. Failures count against the address like wrong passwords.
 */
export async function passkeySignInRoutes(app: FastifyInstance, opts: { db: Db; config: Config; reportClonedPasskey: ClonedPasskeyReport }): Promise<void> {
  const { db } = opts;
  const rp = opts.config.relyingParty;

  const sendOptions = async (req: FastifyRequest, reply: FastifyReply, purpose: ChallengePurpose, userId: number | null) => {
    const options = await authenticationOptions(rp);
    await issueChallenge(db, req.csrfBinding, purpose, options.challenge, userId);
    return reply.header('cache-control', 'no-store').send(options);
  };

  /**
   * Checks the posted assertion against this browser's challenge for `purpose`. On failure the reason is flashed and
   * the browser sent to `back`; the caller returns the reply. `owner`: only this account's passkeys count here.
   */
  const verify = async (
    req: FastifyRequest,
    reply: FastifyReply,
    purpose: ChallengePurpose,
    back: string,
    owner: number | null,
  ): Promise<{ ok: true; passkey: StoredPasskey } | { ok: false; reply: FastifyReply }> => {
    const { credential } = parseCredentialForm(assertionFormSchema, req.body);
    const refuse = (text: string) => {
      reply.flash('danger', text);
      return { ok: false as const, reply: reply.redirect(back, 303) };
    };
    const ipKey = `ip:${req.ip}`;
    const reserved = await reserveAttempt(db, ipKey, IP_PASSWORD_RULE);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return refuse('Too many failed sign-ins from your network. Try again later.');
    }
    const challenge = await takeChallenge(db, req.csrfBinding, purpose);
    if (!challenge) return refuse('That passkey request expired or was already used. Try again.');
    const result: AssertionResult = await verifyAssertion(db, rp, credential, challenge.challenge);
    if (!result.ok || (owner !== null && result.passkey.userId !== owner)) {
      app.metrics.signInFailed('passkey');
      req.log.warn({ reason: result.ok ? 'other_account' : `passkey_${result.reason}` }, 'passkey refused');
      if (!result.ok && result.reason === 'counter') {
        await opts.reportClonedPasskey(req, result.passkey, result.counter);
        return refuse(
          'This passkey was refused: its signature counter went backwards, which can mean it was copied. Use another way to sign in, and tell an administrator.',
        );
      }
      if (!result.ok && result.reason === 'unknown')
        return refuse('This passkey is not registered here (it may have been removed). Use another way to sign in.');
      if (result.ok) return refuse('That passkey belongs to another account.');
      return refuse('The passkey could not be verified. Try again.');
    }
    await releaseAttempt(db, ipKey, IP_PASSWORD_RULE);
    return { ok: true, passkey: result.passkey };
  };

  // Sign-in. A browser half-way through another sign-in may start over, as with POST /login.
  app.post('/login/passkey/options', async (req, reply) => {
    requireAnonymous(req, { allowPending: true });
    return sendOptions(req, reply, 'sign-in', null);
  });

  app.post('/login/passkey', async (req, reply) => {
    requireAnonymous(req, { allowPending: true });
    const next = nextFromQuery(req);
    const checked = await verify(req, reply, 'sign-in', withNext('/login', next), null);
    if (!checked.ok) return checked.reply;
    const user = await findUserById(db, checked.passkey.userId);
    if (!user) return reply.redirect('/login', 303); // removed between the two statements
    // The passkey is both factors: no TOTP step follows; completeSignIn still refuses a deactivated account.
    return completeSignIn(req, reply, user, { method: 'passkey', next, secondFactorPassed: true });
  });

  // The second step, for the pending session's account.
  app.post('/login/2fa/passkey/options', async (req, reply) => {
    const session = requireSecondFactorPending(req);
    return sendOptions(req, reply, 'second-factor', session.userId);
  });

  app.post('/login/2fa/passkey', async (req, reply) => {
    const session = requireSecondFactorPending(req);
    const next = nextFromQuery(req);
    const checked = await verify(req, reply, 'second-factor', withNext(SECOND_FACTOR_PATH, next), session.userId);
    if (!checked.ok) return checked.reply;
    return completeSignIn(
      req,
      reply,
      { id: session.userId, isActive: session.isActive, is2faEnabled: session.is2faEnabled, hasPasskey: true },
      { method: session.signInMethod, next, secondFactorPassed: true },
    );
  });

  // The step-up's proof.
  app.post(`${CONFIRM_PATH}/passkey/options`, async (req, reply) => {
    const user = requireUser(req);
    return sendOptions(req, reply, 'step-up', user.userId);
  });

  app.post(`${CONFIRM_PATH}/passkey`, async (req, reply) => {
    const user = requireUser(req);
    const next = nextFromQuery(req);
    const checked = await verify(req, reply, 'step-up', withNext(CONFIRM_PATH, next), user.userId);
    if (!checked.ok) return checked.reply;
    await recordProof(db, user.sessionId);
    return reply.redirect(next ?? '/settings', 303);
  });
}
