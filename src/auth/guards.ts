import type { FastifyRequest } from 'fastify';
import { ForbiddenError, RedirectError, SecondFactorRequiredError, UnauthenticatedError } from '../http/errors.ts';
import { wantsJson } from '../http/request-kind.ts';
import type { SessionUser } from './sessions.ts';

/** Where a session that has passed only its first factor is sent. */
export const SECOND_FACTOR_PATH = '/login/2fa';

/**
 * Guards throw, so a route reads top to bottom: `const user = requireUser(req)`.
 * A second-factor-pending session is not signed in: pages send it to the second step, JSON answers 401.
 */
export function requireUser(req: FastifyRequest): SessionUser {
  if (req.user) return req.user;
  if (req.session?.secondFactorPending) throw new SecondFactorRequiredError(SECOND_FACTOR_PATH);
  throw new UnauthenticatedError();
}

declare module 'fastify' {
  interface FastifyInstance {
    /** REQUIRE_2FA_FOR_ADMINS (buildApp decorates it). */
    require2faForAdmins: boolean;
    /** API_KEYS: the API and the key pages exist (buildApp decorates it). */
    apiKeysEnabled: boolean;
  }
}

/** Where an admin without 2FA is sent when REQUIRE_2FA_FOR_ADMINS is on. */
export const TWO_FACTOR_SETTINGS_PATH = '/settings/2fa';

export function requireAdmin(req: FastifyRequest): SessionUser {
  const user = requireUser(req);
  if (!user.isAdmin) throw new ForbiddenError('This page is for administrators.');
  // is2faEnabled and hasPasskey are read with the session on every request, so removing the last factor bites at once.
  // A passkey meets the rule as TOTP does (it is phishing-proof besides).
  if (req.server.require2faForAdmins && !user.is2faEnabled && !user.hasPasskey) {
    if (wantsJson(req)) throw new ForbiddenError(`Administrators must turn on two-factor authentication or add a passkey first: ${TWO_FACTOR_SETTINGS_PATH}`);
    throw new RedirectError(TWO_FACTOR_SETTINGS_PATH);
  }
  return user;
}

/** The "confirm it's you" form of the step-up. */
export const CONFIRM_PATH = '/settings/confirm';

/**
 * Step-up (decision record 011): the signed-in user, if they proved who they are within STEP_UP_WINDOW_MS (a sign-in
 * or the confirm form); otherwise pages go to the confirm form, which sends them back to `returnTo`, and JSON gets 403.
 * For what a stolen session must not do alone: enrol 2FA now, create API keys and passkeys later.
 */
export function requireRecentProof(req: FastifyRequest, returnTo: string): SessionUser {
  const user = requireUser(req);
  if (user.hasRecentProof) return user;
  if (wantsJson(req)) throw new ForbiddenError(`Confirm it is you first: ${CONFIRM_PATH}`);
  throw new RedirectError(`${CONFIRM_PATH}?next=${encodeURIComponent(returnTo)}`);
}

/** The second step of a sign-in: only a session that has passed its first factor and waits for the second. */
export function requireSecondFactorPending(req: FastifyRequest): SessionUser {
  if (req.session?.secondFactorPending) return req.session;
  if (req.user) throw new RedirectError('/chat');
  throw new RedirectError('/login');
}

/** Any session, complete or pending: sign-out, which a half-signed-in visitor must reach too. */
export function requireSession(req: FastifyRequest): SessionUser {
  if (req.session) return req.session;
  throw new UnauthenticatedError();
}

/**
 * Sign-in and registration pages: a signed-in user has nothing to do there, a pending one belongs at the second step.
 * `allowPending`: POST /login may start over with another account (the pending session is then replaced).
 */
export function requireAnonymous(req: FastifyRequest, opts: { allowPending?: boolean } = {}): void {
  if (req.user) throw new RedirectError('/chat');
  if (req.session?.secondFactorPending && !opts.allowPending) throw new RedirectError(SECOND_FACTOR_PATH);
}
