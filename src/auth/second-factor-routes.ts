import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { formString, parseBody } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { requireSecondFactorPending } from './guards.ts';
import { passkeyButton } from './passkey-views.ts';
import { secondFactorPage } from './second-factor-views.ts';
import type { SessionUser } from './sessions.ts';
import { completeSignIn, nextFromQuery } from './sign-in.ts';
import { clearFailures, releaseAttempt, reserveAttempt, secondsLocked } from './throttle.ts';
import { type Clock, systemClock } from './totp.ts';
import {
  CODE_JUST_USED_MESSAGE,
  RECOVERY_CODES_LOW,
  TOTP_CODE_RULE,
  totpAttemptsRemaining,
  totpSecretBox,
  totpThrottleKey,
  verifyAndConsumeProof,
} from './totp-queries.ts';

const codeSchema = z.object({ otp_code: formString(64, 'Code').transform((v) => v.trim()) });

/**
 * The second step of a sign-in. A session that passed the password of an account with 2FA on reaches only this
 * page and sign-out. A code of the account's secret (±1 step, never one already used) or an unused recovery code
 * finishes the sign-in through completeSignIn, which rotates the session. Wrong codes count per account (not per
 * sign-in): 5 in 15 minutes lock the step for every pending sign-in of that account.
 */
export async function secondFactorRoutes(app: FastifyInstance, opts: { db: Db; config: Config; clock?: Clock }): Promise<void> {
  const { db } = opts;
  const box = totpSecretBox(opts.config.APP_SECRET);
  const clock = opts.clock ?? systemClock;

  const show = async (req: FastifyRequest, reply: FastifyReply, session: SessionUser, status: number, error?: string) => {
    const key = totpThrottleKey(session.userId);
    const lockedForS = await secondsLocked(db, key);
    if (lockedForS > 0) reply.header('retry-after', String(lockedForS));
    const recovery = (req.query as Record<string, unknown>).recovery === '1' || (typeof error === 'string' && req.method === 'POST' && isRecoveryInput(req));
    const next = nextFromQuery(req);
    return reply.page(
      {
        title: 'Two-factor authentication',
        scripts: session.hasPasskey ? [assetUrl('passkeys')] : [],
        body: secondFactorPage({
          totp: session.is2faEnabled,
          passkey: session.hasPasskey
            ? passkeyButton({
                csrfToken: req.csrfToken(),
                relyingParty: opts.config.relyingParty,
                action: 'passkey-second-factor',
                optionsUrl: '/login/2fa/passkey/options',
                postUrl: next ? `/login/2fa/passkey?next=${encodeURIComponent(next)}` : '/login/2fa/passkey',
                label: 'Use your passkey',
                primary: !session.is2faEnabled,
              })
            : undefined,
          csrfToken: req.csrfToken(),
          next,
          recovery,
          attemptsRemaining: await totpAttemptsRemaining(db, session.userId),
          lockedForS: lockedForS > 0 ? lockedForS : undefined,
          error,
        }),
      },
      status,
    );
  };

  app.get('/login/2fa', async (req, reply) => {
    const session = requireSecondFactorPending(req);
    return show(req, reply, session, 200);
  });

  app.post('/login/2fa', async (req, reply) => {
    const session = requireSecondFactorPending(req);
    const form = parseBody(codeSchema, req.body);
    if (!form.ok) return show(req, reply, session, 400, form.errors.otp_code ?? 'Enter the code.');
    const key = totpThrottleKey(session.userId);
    // Reserved before the code is checked, so parallel guesses cannot outrun the count (throttle.ts).
    const reserved = await reserveAttempt(db, key, TOTP_CODE_RULE);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      return show(req, reply, session, 429);
    }
    const proof = await verifyAndConsumeProof(db, box, session.userId, form.data.otp_code, clock());
    if (!proof.ok && proof.reused) {
      // Not a wrong code (only the secret's holder has it), so the reservation is given back; it still signs nobody in.
      // A locked step refused it above, before it was checked, so replays cannot lift or outrun the lock.
      await releaseAttempt(db, key, TOTP_CODE_RULE);
      return show(req, reply, session, 409, CODE_JUST_USED_MESSAGE);
    }
    if (!proof.ok) {
      app.metrics.signInFailed(isRecoveryInput(req) ? 'recovery' : 'totp');
      return show(req, reply, session, 401, 'That code is not right, or it was used already.');
    }
    await clearFailures(db, key);
    if (proof.kind === 'recovery') {
      const left = proof.recoveryCodesLeft;
      reply.flash(
        left <= RECOVERY_CODES_LOW ? 'warning' : 'info',
        `You used a recovery code, ${left} left.${left <= RECOVERY_CODES_LOW ? ' Make new ones under Settings → Two-factor authentication.' : ''}`,
      );
    }
    // The pending session already proved the password; completeSignIn says so if the account is deactivated.
    return completeSignIn(
      req,
      reply,
      { id: session.userId, isActive: session.isActive, is2faEnabled: session.is2faEnabled, hasPasskey: session.hasPasskey },
      { method: session.signInMethod, next: nextFromQuery(req), secondFactorPassed: true },
    );
  });
}

function isRecoveryInput(req: FastifyRequest): boolean {
  const code = (req.body as Record<string, unknown> | undefined)?.otp_code;
  return typeof code === 'string' && !/^\s*\d{6}\s*$/.test(code) && code.trim().length > 0;
}
