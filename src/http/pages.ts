import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { layout, type PageContext, type PageOptions } from '../views/layout.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is signed in, as pages show them; set by the session loader, null for visitors. */
    viewer: PageContext['user'];
  }
  interface FastifyReply {
    page(options: PageOptions, statusCode?: number): FastifyReply;
  }
}

export function pageContext(req: FastifyRequest, reply: FastifyReply, appName: string): PageContext {
  return {
    appName,
    csrfToken: req.csrfToken(),
    user: req.viewer,
    flashes: [...req.takeFlashes(reply), ...req.pendingFlashes.splice(0)],
    path: req.url.split('?')[0] ?? '/',
  };
}

/** `reply.page({ title, body })` renders the layout; pages are never cached (they carry a CSRF token and private data). */
export const pagesPlugin = fp(async (app: FastifyInstance, opts: { appName: string }) => {
  app.decorateRequest('viewer', null);
  app.decorateReply('page', function (this: FastifyReply, options: PageOptions, statusCode = 200) {
    const ctx = pageContext(this.request, this, opts.appName);
    return this.code(statusCode).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(layout(ctx, options));
  });
});
