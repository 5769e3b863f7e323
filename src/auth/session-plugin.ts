import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../db/database.ts';
import { cookieNames, cookieOptions } from '../http/cookies.ts';
import { isKeyApi } from '../http/request-kind.ts';
import {
  type CompanionBuild,
  deleteExpiredSessions,
  invalidateSession,
  type NewSession,
  rotateSession,
  type SessionUser,
  validateSessionToken,
} from './sessions.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The browser's valid session, complete or waiting for its second factor; null for visitors. */
    session: SessionUser | null;
    /** The signed-in user: a complete session only (a second-factor-pending one is not signed in). */
    user: SessionUser | null;
    /** The route's session companion data (see SessionCompanion), read with the session; undefined otherwise. */
    sessionCompanion: unknown;
  }
  interface FastifyContextConfig {
    /** Data the route's page needs, read in the same statement as the session check. */
    sessionCompanion?: SessionCompanion;
  }
}

/**
 * A route's page data read with the session (one round trip): `build` as in validateSessionToken, `args` taken from
 * the request (its path parameters: routing is done before the session hook runs). Data only reaches
 * `req.sessionCompanion` for a complete session, so a route reads it after its requireUser.
 */
// biome-ignore lint/suspicious/noExplicitAny: each route's companion has arguments of its own.
export interface SessionCompanion<A extends unknown[] = any[]> {
  build: CompanionBuild<A>;
  args(req: FastifyRequest): A;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const SESSION_CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

export interface SessionControl {
  /**
   * Rotates: the session this browser had (complete or pending) is deleted and a new token issued, so a token
   * planted before sign-in is worth nothing after it (no session fixation). Only completeSignIn calls this.
   */
  start(req: FastifyRequest, reply: FastifyReply, userId: number, session: Omit<NewSession, 'userAgent' | 'ip'>): Promise<void>;
  signOut(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** TOTP_FOR_OAUTH: whether a Google sign-in of a user with 2FA also asks for the code. */
  readonly totpForOauth: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionControl;
  }
}

/** Loads the session on every request (static files excepted) and offers starting and ending one to sign-in. */
export const sessionPlugin = fp(async (app: FastifyInstance, opts: { db: Db; secure: boolean; totpForOauth: boolean }) => {
  const { db, secure } = opts;
  const name = cookieNames(secure).session;

  app.decorateRequest('session', null);
  app.decorateRequest('user', null);
  app.decorateRequest('sessionCompanion', undefined);
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/static/') || isKeyApi(req)) return;
    const token = req.cookies[name];
    if (!token) return;
    const companion = req.routeOptions.config.sessionCompanion;
    const found = TOKEN_SHAPE.test(token) ? await validateSessionToken(db, token, companion && { build: companion.build, args: companion.args(req) }) : null;
    if (!found) {
      reply.clearCookie(name, cookieOptions(secure));
      return;
    }
    const { companion: data, ...session } = found;
    req.session = session;
    req.csrfBinding = `s:${session.sessionId}`;
    if (session.secondFactorPending) return;
    req.sessionCompanion = data;
    req.user = session;
    req.viewer = { id: session.userId, username: session.username, isAdmin: session.isAdmin };
  });

  // Expired rows are never valid again (validateSessionToken checks both expiries); delete them now and then so the
  // table does not grow without end. Any process may do it: the DELETE is idempotent.
  let cleaner: NodeJS.Timeout | undefined;
  const clean = () =>
    deleteExpiredSessions(db).then(
      () => app.databaseOutage.succeeded(),
      (err) => {
        if (!app.databaseOutage.failed('session cleanup', err)) app.log.error({ err }, 'expired session cleanup failed');
      },
    );
  app.addHook('onReady', async () => {
    await clean();
    cleaner = setInterval(() => void clean(), SESSION_CLEANUP_INTERVAL_MS).unref();
  });
  app.addHook('onClose', async () => clearInterval(cleaner));

  app.decorate('sessions', {
    totpForOauth: opts.totpForOauth,
    async start(req, reply, userId, session) {
      const token = await rotateSession(db, req.session?.sessionId ?? null, userId, { ...session, userAgent: req.headers['user-agent'], ip: req.ip });
      reply.setCookie(name, token, cookieOptions(secure));
    },
    async signOut(req, reply) {
      if (req.session) await invalidateSession(db, req.session.sessionId);
      req.session = null;
      req.user = null;
      req.viewer = null;
      reply.clearCookie(name, cookieOptions(secure));
    },
  } satisfies SessionControl);
});
