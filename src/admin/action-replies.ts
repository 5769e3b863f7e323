import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SessionUser } from '../auth/sessions.ts';
import type { AuditActor } from './audit-queries.ts';
import type { ActionOutcome, UserAction } from './user-actions.ts';

export const actorOf = (req: FastifyRequest, admin: SessionUser): AuditActor => ({ id: admin.userId, username: admin.username, ip: req.ip ?? null });

const PAST: Record<UserAction, string> = {
  promote: 'promoted to Admin',
  demote: 'demoted to User',
  deactivate: 'deactivated: signed out everywhere, running answers stopped',
  reactivate: 'reactivated',
  'sign-out-everywhere': 'signed out everywhere',
};

function names(list: { username: string }[]): string {
  const shown = list.slice(0, 5).map((u) => `“${u.username.slice(0, 60)}”`);
  return `${shown.join(', ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`;
}

export function flashOutcome(reply: FastifyReply, action: UserAction, outcome: ActionOutcome): void {
  if (outcome.changed.length > 0) reply.flash('success', `${names(outcome.changed)} ${PAST[action]}.`);
  if (outcome.unchanged.length > 0 && action !== 'sign-out-everywhere') reply.flash('info', `${names(outcome.unchanged)}: nothing to change.`);
}
