import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SignInMethod } from '../db/schema.ts';
import { SECOND_FACTOR_PATH } from './guards.ts';

/** Said only once the account has proved who it is (password, and the second factor when it has one). */
export const ACCOUNT_DEACTIVATED_MESSAGE = 'This account is deactivated. Ask an administrator of this server to reactivate it.';

/** What completeSignIn needs to know of the account, whichever way in found it. */
export interface SignInUser {
  id: number;
  isActive: boolean;
  is2faEnabled: boolean;
  /** A passkey is a second factor too: a password sign-in of such an account asks for it (or the TOTP code). */
  hasPasskey: boolean;
}

export interface SignInOptions {
  method: SignInMethod;
  /** Where to go afterwards: a path from safeNext, never a URL from the request as it came. */
  next?: string;
  /** The second factor has just been checked (the /login/2fa step calls this again with true). */
  secondFactorPassed?: boolean;
}

/**
 * The one way every sign-in ends (password, Google, a passkey and the second factor all call it), so the rules are
 * written once: an account with 2FA gets a second-factor-pending session that reaches only the second step;
 * a deactivated account, once it has passed every factor it has, is told so and whom to ask, and gets no session
 * (a wrong password or code never reaches here, so it says nothing more than "wrong"); otherwise the session is
 * rotated and the sign-in recorded (one transaction), and the browser sent on.
 * Everything that can fail is checked before the session is made, so a failing request never leaves one behind.
 */
export async function completeSignIn(req: FastifyRequest, reply: FastifyReply, user: SignInUser, opts: SignInOptions): Promise<FastifyReply> {
  const sessions = req.server.sessions;
  const hasSecondFactor = user.is2faEnabled || user.hasPasskey;
  const secondFactorDue = hasSecondFactor && !opts.secondFactorPassed && (opts.method === 'password' || sessions.totpForOauth);
  if (secondFactorDue) {
    // Deactivated or not: the second step comes first, so the deactivation is only said to whoever has the code too.
    await sessions.start(req, reply, user.id, { method: opts.method, secondFactorPending: true });
    return reply.redirect(opts.next ? `${SECOND_FACTOR_PATH}?next=${encodeURIComponent(opts.next)}` : SECOND_FACTOR_PATH, 303);
  }
  if (!user.isActive) {
    req.log.warn({ reason: 'account_deactivated', method: opts.method }, 'sign-in refused');
    req.server.metrics.signInFailed(opts.method);
    if (req.session) await sessions.signOut(req, reply); // the pending session of this sign-in
    reply.flash('danger', ACCOUNT_DEACTIVATED_MESSAGE);
    return reply.redirect(opts.next ? `/login?next=${encodeURIComponent(opts.next)}` : '/login', 303);
  }
  // A proof for the step-up only when every factor the account has was passed (a Google sign-in that skipped the
  // code, TOTP_FOR_OAUTH=false, is not one for an account with 2FA).
  await sessions.start(req, reply, user.id, { method: opts.method, proved: !hasSecondFactor || Boolean(opts.secondFactorPassed) });
  return reply.redirect(opts.next ?? '/chat', 303);
}

/**
 * Only our own paths: `/chat/3`, never `//evil.example` or `https://…` (open redirect). Takes the raw query value:
 * a repeated `?next=` arrives as an array and is ignored, not a 500.
 */
export function safeNext(next: unknown): string | undefined {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : undefined;
}

/** `?next=` of this request, made safe. */
export function nextFromQuery(req: FastifyRequest): string | undefined {
  return safeNext((req.query as Record<string, unknown> | undefined)?.next);
}
