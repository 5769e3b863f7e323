import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { formString, parseBody } from '../http/validation.ts';
import { findUserById } from '../users/user-queries.ts';
import { assetUrl } from '../views/assets.ts';
import { CONFIRM_PATH, requireUser } from './guards.ts';
import { passkeyButton } from './passkey-views.ts';
import { PASSWORD_MAX_CHARS, verifyPassword } from './passwords.ts';
import { recordProof, type SessionUser, STEP_UP_WINDOW_MS } from './sessions.ts';
import { nextFromQuery } from './sign-in.ts';
import { confirmPage, type ProofWay } from './step-up-views.ts';
import { ACCOUNT_PASSWORD_RULE, clearFailures, passwordThrottleKey, releaseAttempt, reserveAttempt } from './throttle.ts';
import { type Clock, systemClock } from './totp.ts';
import { CODE_JUST_USED_MESSAGE, TOTP_CODE_RULE, totpSecretBox, totpThrottleKey, verifyAndConsumeProof } from './totp-queries.ts';

const confirmSchema = z.object({
  otp_code: formString(64, 'Code')
    .transform((v) => v.trim())
    .optional(),
  password: z
    .string({ error: 'The password must be given once.' })
    .max(PASSWORD_MAX_CHARS * 4)
    .optional(),
});

/**
 * The step-up's "confirm it's you" form (decision record 011). The account's strongest way decides what it asks:
 * a code (TOTP or recovery) when 2FA is on, else a passkey when it has one (passkey-sign-in-routes.ts), else the password, else (a Google-only account) a new sign-in. A
 * success records the proof on the session (requireRecentProof reads it) and goes back to `?next=`. Wrong answers
 * count where the same secret counts elsewhere: codes with the second step, passwords with the sign-in form.
 */
export async function stepUpRoutes(app: FastifyInstance, opts: { db: Db; config: Config; clock?: Clock }): Promise<void> {
  const { db } = opts;
  const box = totpSecretBox(opts.config.APP_SECRET);
  const clock = opts.clock ?? systemClock;
  const windowMinutes = STEP_UP_WINDOW_MS / 60_000;

  const wayOf = async (user: SessionUser): Promise<{ way: ProofWay; passwordHash: string | null; email: string }> => {
    const account = await findUserById(db, user.userId);
    const passwordHash = account?.passwordHash || null;
    const way: ProofWay = user.is2faEnabled ? 'code' : user.hasPasskey ? 'passkey' : passwordHash ? 'password' : 'sign-in';
    return { way, passwordHash, email: account?.email ?? user.email };
  };
  const show = (req: FastifyRequest, reply: FastifyReply, user: SessionUser, way: ProofWay, status = 200, error?: string) => {
    const next = nextFromQuery(req);
    const passkey = user.hasPasskey
      ? passkeyButton({
          csrfToken: req.csrfToken(),
          relyingParty: opts.config.relyingParty,
          action: 'passkey-step-up',
          optionsUrl: `${CONFIRM_PATH}/passkey/options`,
          postUrl: next ? `${CONFIRM_PATH}/passkey?next=${encodeURIComponent(next)}` : `${CONFIRM_PATH}/passkey`,
          label: 'Confirm with a passkey',
          primary: way === 'passkey',
        })
      : undefined;
    return reply.page(
      {
        title: "Confirm it's you",
        scripts: passkey ? [assetUrl('passkeys')] : [],
        body: confirmPage({ csrfToken: req.csrfToken(), way, windowMinutes, next, error, passkey }),
      },
      status,
    );
  };

  app.get(CONFIRM_PATH, async (req, reply) => {
    const user = requireUser(req);
    return show(req, reply, user, (await wayOf(user)).way);
  });

  app.post(CONFIRM_PATH, async (req, reply) => {
    const user = requireUser(req);
    const next = nextFromQuery(req);
    const { way, passwordHash, email } = await wayOf(user);
    if (way === 'sign-in') {
      // No secret to ask for here: a fresh sign-in is the proof, and it brings the person back.
      await app.sessions.signOut(req, reply);
      reply.flash('info', 'Sign in again to confirm it is you.');
      return reply.redirect(next ? `/login?next=${encodeURIComponent(next)}` : '/login', 303);
    }
    if (way === 'passkey') return show(req, reply, user, way, 400, 'Use your passkey (the button above).');
    const form = parseBody(confirmSchema, req.body);
    const given = form.ok ? (way === 'code' ? form.data.otp_code : form.data.password) : undefined;
    if (!given) return show(req, reply, user, way, 400, way === 'code' ? 'Enter a current code or a recovery code.' : 'Enter your password.');

    const key = way === 'code' ? totpThrottleKey(user.userId) : passwordThrottleKey(email);
    const rule = way === 'code' ? TOTP_CODE_RULE : ACCOUNT_PASSWORD_RULE;
    const reserved = await reserveAttempt(db, key, rule);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return show(req, reply, user, way, 429, `Too many wrong ${way === 'code' ? 'codes' : 'passwords'}. Try again later.`);
    }
    if (way === 'code') {
      const proof = await verifyAndConsumeProof(db, box, user.userId, given, clock());
      if (!proof.ok && proof.reused) {
        await releaseAttempt(db, key, rule); // not a wrong code: see second-factor-routes.ts
        return show(req, reply, user, way, 409, CODE_JUST_USED_MESSAGE);
      }
      if (!proof.ok) return show(req, reply, user, way, 401, 'That code is not right, or it was used already.');
    } else if (!(passwordHash && (await verifyPassword(passwordHash, given)))) {
      return show(req, reply, user, way, 401, 'That is not your password.');
    }
    await clearFailures(db, key);
    await recordProof(db, user.sessionId);
    return reply.redirect(next ?? '/settings', 303);
  });
}
