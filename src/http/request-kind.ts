import type { FastifyRequest } from 'fastify';

/** JSON API callers get JSON errors; browsers navigating get pages and redirects. */
export function wantsJson(req: FastifyRequest): boolean {
  if (req.url.startsWith('/api/')) return true;
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/**
 * The OpenAI-compatible API (src/api): its one credential is a bearer key, so it reads no cookie — no session is
 * loaded, and with no ambient credential there is nothing for a cross-site request to ride on (no CSRF check).
 */
export function isKeyApi(req: FastifyRequest): boolean {
  return req.url === '/v1' || req.url.startsWith('/v1/') || req.url.startsWith('/v1?');
}
