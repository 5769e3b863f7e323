import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../db/database.ts';
import { cookieNames, cookieOptions } from '../http/cookies.ts';
import { createSession, deleteExpiredSessions, invalidateSession, type SessionUser, validateSessionToken } from './sessions.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, validated against the database on this request; null for visitors. */
    user: SessionUser | null;
  }
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const SESSION_CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

export interface SessionControl {
  /** Rotates: any session this browser had is deleted, a new token is issued (no session fixation). */
  signIn(req: FastifyRequest, reply: FastifyReply, userId: number): Promise<void>;
  signOut(req: FastifyRequest, reply: FastifyReply): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionControl;
  }
}

/** Loads the session on every request (static files excepted) and offers sign-in/sign-out to the routes. */
export const sessionPlugin = fp(async (app: FastifyInstance, opts: { db: Db; secure: boolean }) => {
  const { db, secure } = opts;
  const name = cookieNames(secure).session;

  app.decorateRequest('user', null);
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/static/')) return;
    const token = req.cookies[name];
    if (!token) return;
    const user = TOKEN_SHAPE.test(token) ? await validateSessionToken(db, token) : null;
    if (!user) {
      reply.clearCookie(name, cookieOptions(secure));
      return;
    }
    req.user = user;
    req.viewer = { id: user.userId, username: user.username, isAdmin: user.isAdmin };
    req.csrfBinding = `s:${user.sessionId}`;
  });

  // Expired rows are never valid again (validateSessionToken checks both expiries); delete them now and then so the
  // table does not grow without end. Any process may do it: the DELETE is idempotent.
  let cleaner: NodeJS.Timeout | undefined;
  const clean = () => deleteExpiredSessions(db).catch((err) => app.log.error({ err }, 'expired session cleanup failed'));
  app.addHook('onReady', async () => {
    await clean();
    cleaner = setInterval(() => void clean(), SESSION_CLEANUP_INTERVAL_MS).unref();
  });
  app.addHook('onClose', async () => clearInterval(cleaner));

  app.decorate('sessions', {
    async signIn(req, reply, userId) {
      if (req.user) await invalidateSession(db, req.user.sessionId);
      const token = await createSession(db, userId, { userAgent: req.headers['user-agent'], ip: req.ip });
      reply.setCookie(name, token, cookieOptions(secure));
    },
    async signOut(req, reply) {
      if (req.user) await invalidateSession(db, req.user.sessionId);
      req.user = null;
      req.viewer = null;
      reply.clearCookie(name, cookieOptions(secure));
    },
  } satisfies SessionControl);
});
