import type { FastifyRequest } from 'fastify';

/** JSON API callers get JSON errors; browsers navigating get pages and redirects. */
export function wantsJson(req: FastifyRequest): boolean {
  if (req.url.startsWith('/api/')) return true;
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}
