import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { z } from 'zod';
import { requireRecentProof, requireUser, TWO_FACTOR_SETTINGS_PATH } from '../auth/guards.ts';
import { recordProof, type SessionUser, STEP_UP_WINDOW_MS } from '../auth/sessions.ts';
import { clearFailures, releaseAttempt, reserveAttempt, secondsLocked } from '../auth/throttle.ts';
import { type Clock, generateTotpSecret, groupSecret, otpauthUri, systemClock } from '../auth/totp.ts';
import {
  CODE_JUST_USED_MESSAGE,
  confirmEnrolment,
  disableTwoFactor,
  readPendingSecret,
  readTotpState,
  regenerateRecoveryCodes,
  startEnrolment,
  TOTP_CODE_RULE,
  totpAttemptsRemaining,
  totpSecretBox,
  totpThrottleKey,
  verifyAndConsumeProof,
} from '../auth/totp-queries.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { formString, parseBody } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { twoFactorPage } from './two-factor-views.ts';

const actionSchema = z.object({
  action: z.enum(['generate', 'confirm', 'disable', 'regenerate'], { message: 'Choose what to do.' }),
  otp_code: formString(64, 'Code')
    .transform((v) => v.trim())
    .optional(),
});

/**
 * Enrolment and changes of one's own TOTP. A new secret waits, sealed, as the pending one until a code of it
 * confirms it; sign-in never reads the pending secret. Every change to an active 2FA (a new authenticator, new
 * recovery codes, turning it off) needs a current code or a recovery code, counted like the second step, so a
 * stolen session cannot disarm it.
 */
export async function twoFactorSettingsRoutes(app: FastifyInstance, opts: { db: Db; config: Config; clock?: Clock }): Promise<void> {
  const { db, config } = opts;
  const box = totpSecretBox(config.APP_SECRET);
  const clock = opts.clock ?? systemClock;

  const show = async (
    req: FastifyRequest,
    reply: FastifyReply,
    user: SessionUser,
    status = 200,
    extra: { error?: string; newCodes?: string[] } = {},
  ): Promise<FastifyReply> => {
    const [state, pending, attemptsRemaining, lockedForS] = await Promise.all([
      readTotpState(db, user.userId),
      readPendingSecret(db, box, user.userId),
      totpAttemptsRemaining(db, user.userId),
      secondsLocked(db, totpThrottleKey(user.userId)),
    ]);
    return reply.page(
      {
        title: 'Two-factor authentication',
        scripts: extra.newCodes ? [assetUrl('recovery-codes')] : [],
        body: twoFactorPage({
          csrfToken: req.csrfToken(),
          appName: config.APP_NAME,
          enabled: Boolean(state?.enabled),
          recoveryCodesLeft: state?.unusedRecoveryCodes ?? 0,
          // A started enrolment's secret is shown only within the step-up window: a stolen session must not read the
          // secret of an authenticator its owner is about to confirm.
          pendingSecret: pending && user.hasRecentProof ? groupSecret(pending.base32) : undefined,
          attemptsRemaining,
          lockedForS: lockedForS > 0 ? lockedForS : undefined,
          stepUpMinutes: user.hasRecentProof ? undefined : STEP_UP_WINDOW_MS / 60_000,
          ...extra,
        }),
      },
      status,
    );
  };

  /**
   * A current code or an unused recovery code, consumed. False: refused, and the answer (the form with the reason)
   * is sent; the caller returns the reply and changes nothing.
   */
  const prove = async (req: FastifyRequest, reply: FastifyReply, user: SessionUser, code: string | undefined): Promise<boolean> => {
    const refuse = async (status: number, error: string) => {
      await show(req, reply, user, status, { error });
      return false;
    };
    if (!code) return refuse(400, 'Enter a current code or a recovery code.');
    const key = totpThrottleKey(user.userId);
    const reserved = await reserveAttempt(db, key, TOTP_CODE_RULE);
    if (!reserved.granted) {
      app.metrics.throttled(reserved.kind);
      reply.header('retry-after', String(reserved.retryAfterS));
      return refuse(429, 'Too many wrong codes. Try again later.');
    }
    const proof = await verifyAndConsumeProof(db, box, user.userId, code, clock());
    if (!proof.ok && proof.reused) {
      await releaseAttempt(db, key, TOTP_CODE_RULE); // not a wrong code: see second-factor-routes.ts
      return refuse(409, CODE_JUST_USED_MESSAGE);
    }
    if (!proof.ok) return refuse(401, 'That code is not right, or it was used already.');
    await clearFailures(db, key);
    await recordProof(db, user.sessionId); // a code is a step-up proof too
    return true;
  };

  app.get('/settings/2fa', async (req, reply) => show(req, reply, requireUser(req)));

  app.post('/settings/2fa', async (req, reply) => {
    const user = requireUser(req);
    const form = parseBody(actionSchema, req.body);
    if (!form.ok) return show(req, reply, user, 400, { error: form.errors.otp_code ?? form.errors.action ?? 'Choose what to do.' });
    const { action, otp_code: code } = form.data;
    const state = await readTotpState(db, user.userId);
    if (!state) throw new NotFoundError();
    // Enrolment needs a recent proof (step-up, decision record 011): a stolen session alone cannot put its own
    // authenticator on an account. Changes to an active 2FA ask for a code each time, below (stricter still).
    if (action === 'confirm' || (action === 'generate' && !state.enabled)) requireRecentProof(req, TWO_FACTOR_SETTINGS_PATH);

    if (action === 'confirm') {
      if (!code) return show(req, reply, user, 400, { error: 'Enter the code your authenticator shows.' });
      const codes = await confirmEnrolment(db, box, user.userId, code, clock());
      if (!codes) return show(req, reply, user, 400, { error: 'That code does not match, or this setup expired. Check the time on your phone and try again.' });
      return show(req, reply, user, 200, { newCodes: codes });
    }
    if (action === 'generate') {
      if (state.enabled && !(await prove(req, reply, user, code))) return reply;
      await startEnrolment(db, box, user.userId, generateTotpSecret());
      return reply.redirect('/settings/2fa', 303);
    }
    // disable and regenerate change an active 2FA.
    if (!state.enabled) return show(req, reply, user, 400, { error: 'Two-factor authentication is not on.' });
    if (!(await prove(req, reply, user, code))) return reply;
    if (action === 'regenerate') return show(req, reply, user, 200, { newCodes: await regenerateRecoveryCodes(db, user.userId) });
    await disableTwoFactor(db, user.userId, user.sessionId);
    reply.flash('warning', 'Two-factor authentication is off, and your other sessions were signed out.');
    return reply.redirect('/settings/2fa', 303);
  });

  // The PENDING secret only: an active secret is never shown again after enrolment.
  app.get('/2fa/qrcode.png', async (req, reply) => {
    const user = requireRecentProof(req, TWO_FACTOR_SETTINGS_PATH);
    const pending = await readPendingSecret(db, box, user.userId);
    if (!pending) throw new NotFoundError('No two-factor setup is in progress.');
    const png = await QRCode.toBuffer(otpauthUri(pending.base32, config.APP_NAME, user.email), { type: 'png', width: 220, margin: 1 });
    return reply.type('image/png').header('cache-control', 'no-store').send(png);
  });
}
