import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { Flash, FlashKind } from '../views/layout.ts';
import { cookieNames, cookieOptions } from './cookies.ts';

declare module 'fastify' {
  interface FastifyReply {
    flash(kind: FlashKind, text: string): FastifyReply;
  }
  interface FastifyRequest {
    /** Messages left by the previous request (Post/Redirect/Get); reading them clears the cookie. */
    takeFlashes(reply: FastifyReply): Flash[];
    pendingFlashes: Flash[];
  }
}

const flashesSchema = z.array(z.object({ kind: z.enum(['success', 'info', 'warning', 'danger']), text: z.string().max(500) })).max(5);

/** Flash messages in a signed cookie: they survive one redirect, and nobody can plant a message of their own. */
export const flashPlugin = fp(async (app: FastifyInstance, opts: { secure: boolean }) => {
  const name = cookieNames(opts.secure).flash;

  app.decorateRequest('pendingFlashes', null as unknown as Flash[]);
  app.addHook('onRequest', async (req) => {
    req.pendingFlashes = [];
  });

  app.decorateReply('flash', function (this: FastifyReply, kind: FlashKind, text: string) {
    const req = this.request;
    req.pendingFlashes.push({ kind, text });
    this.setCookie(name, JSON.stringify(req.pendingFlashes), { ...cookieOptions(opts.secure, 60), signed: true });
    return this;
  });

  app.decorateRequest('takeFlashes', function (this: FastifyRequest, reply: FastifyReply) {
    const raw = this.cookies[name];
    if (!raw) return [];
    reply.clearCookie(name, cookieOptions(opts.secure));
    const unsigned = this.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return [];
    try {
      const parsed = flashesSchema.safeParse(JSON.parse(unsigned.value));
      return parsed.success ? parsed.data : [];
    } catch {
      return [];
    }
  });
});
