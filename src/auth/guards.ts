import type { FastifyRequest } from 'fastify';
import { ForbiddenError, RedirectError, UnauthenticatedError } from '../http/errors.ts';
import type { SessionUser } from './sessions.ts';

/** Guards throw, so a route reads top to bottom: `const user = requireUser(req)`. */
export function requireUser(req: FastifyRequest): SessionUser {
  if (!req.user) throw new UnauthenticatedError();
  return req.user;
}

export function requireAdmin(req: FastifyRequest): SessionUser {
  const user = requireUser(req);
  if (!user.isAdmin) throw new ForbiddenError('This page is for administrators.');
  return user;
}

/** Sign-in and registration pages: a signed-in user has nothing to do there. */
export function requireAnonymous(req: FastifyRequest): void {
  if (req.user) throw new RedirectError('/chat');
}
