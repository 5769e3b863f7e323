import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SignInMethod } from '../db/schema.ts';
import { ForbiddenError } from '../http/errors.ts';
import { SECOND_FACTOR_PATH } from './guards.ts';

/** What completeSignIn needs to know of the account, whichever way in found it. */
export interface SignInUser {
  id: number;
  isActive: boolean;
  is2faEnabled: boolean;
}

export interface SignInOptions {
  method: SignInMethod;
  /** Where to go afterwards: a path from safeNext, never a URL from the request as it came. */
  next?: string;
  /** The second factor has just been checked (the /login/2fa step calls this again with true). */
  secondFactorPassed?: boolean;
}

/**
 * The one way every sign-in ends (password now; Google and the second factor call it too), so the rules are
 * written once: a deactivated account gets no session; an account with 2FA gets a second-factor-pending session
 * that reaches only the second step; otherwise the session is rotated and the sign-in recorded (one transaction), and the browser sent on.
 * Everything that can fail is checked before the session is made, so a failing request never leaves one behind.
 */
export async function completeSignIn(req: FastifyRequest, reply: FastifyReply, user: SignInUser, opts: SignInOptions): Promise<FastifyReply> {
  if (!user.isActive) throw new ForbiddenError('This account cannot sign in.');
  const sessions = req.server.sessions;
  const secondFactorDue = user.is2faEnabled && !opts.secondFactorPassed && (opts.method === 'password' || sessions.totpForOauth);
  if (secondFactorDue) {
    await sessions.start(req, reply, user.id, { method: opts.method, secondFactorPending: true });
    return reply.redirect(opts.next ? `${SECOND_FACTOR_PATH}?next=${encodeURIComponent(opts.next)}` : SECOND_FACTOR_PATH, 303);
  }
  await sessions.start(req, reply, user.id, { method: opts.method });
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
