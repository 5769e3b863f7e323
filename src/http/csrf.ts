import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { deriveKey } from '../crypto/secret-box.ts';
import { constantTimeEqual, generateToken, hmacBase64Url } from '../crypto/tokens.ts';
import { cookieNames, cookieOptions } from './cookies.ts';
import { ForbiddenError } from './errors.ts';
import { isKeyApi } from './request-kind.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** What the CSRF token is bound to: the session when signed in, else this browser's anonymous cookie. */
    csrfBinding: string;
    /** A cookie minted by the first csrfToken() of this request (the visitor had none); set in onSend. */
    csrfNewCookie: string;
    csrfToken(): string;
  }
}

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const loopbackHosts = ['localhost', '127.0.0.1', '[::1]'];

/**
 * PUBLIC_URL's origin; when it is a loopback address, its loopback aliases on the same port too, so that
 * `npm start` works whether the browser opens http://localhost:5000 or http://127.0.0.1:5000 (the address
 * Fastify prints). A loopback origin can only come from this machine, so nothing is opened to other sites.
 */
export function acceptedOrigins(publicUrl: string): Set<string> {
  const url = new URL(publicUrl);
  if (!loopbackHosts.includes(url.hostname)) return new Set([url.origin]);
  return new Set(loopbackHosts.map((host) => `${url.protocol}//${host}${url.port ? `:${url.port}` : ''}`));
}

/**
 * Synchroniser tokens derived with HMAC (no table needed): token = HMAC(key, binding). Anonymous visitors get a
 * random cookie to bind to, so the sign-in and registration forms are protected too (login CSRF). Every unsafe
 * request must carry the token (`_csrf` field or `x-csrf-token` header) and, when the browser says where it
 * comes from, come from our own origin.
 */
export const csrfPlugin = fp(async (app: FastifyInstance, opts: { appSecret: string; publicUrl: string; secure: boolean }) => {
  const key = deriveKey(opts.appSecret, 'csrf');
  const names = cookieNames(opts.secure);
  const ownOrigins = acceptedOrigins(opts.publicUrl);

  app.decorateRequest('csrfBinding', '');
  app.decorateRequest('csrfNewCookie', '');
  app.decorateRequest('csrfToken', function (this: FastifyRequest) {
    if (this.csrfBinding === '') {
      // The first token for a visitor without a (valid) cookie: mint the cookie it is bound to, set when the answer goes out.
      this.csrfNewCookie = generateToken();
      this.csrfBinding = `a:${this.csrfNewCookie}`;
    }
    return hmacBase64Url(key, this.csrfBinding);
  });

  // Runs before the session loader (registered later), which replaces the binding when a session is valid.
  // The cookie is only set by a response that hands out a token (a page, a refused POST): never by a static file,
  // which shared caches keep and would serve, cookie and all, to the next visitor; nor by JSON or health checks.
  app.addHook('onRequest', async (req) => {
    const anonymous = req.cookies[names.csrf];
    if (anonymous && /^[A-Za-z0-9_-]{43}$/.test(anonymous)) req.csrfBinding = `a:${anonymous}`;
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.csrfNewCookie) reply.setCookie(names.csrf, req.csrfNewCookie, cookieOptions(opts.secure));
    return payload;
  });

  // `Origin: null` is refused like any foreign origin, even when Sec-Fetch-Site says same-origin: a sandboxed frame
  // or a page sent with `Referrer-Policy: no-referrer` posts it. Our pages never use no-referrer; the one whose
  // address must not leak in a Referer (the reset link) uses strict-origin instead (password-reset-routes.ts).
  app.addHook('preValidation', async (req) => {
    if (!unsafeMethods.has(req.method) || isKeyApi(req)) return;
    const origin = req.headers.origin;
    if (origin && !ownOrigins.has(origin)) throw new ForbiddenError('Cross-origin request refused.');
    if (!origin && req.headers['sec-fetch-site'] === 'cross-site') throw new ForbiddenError('Cross-origin request refused.');
    const body = req.body as Record<string, unknown> | undefined;
    const sent = (req.headers['x-csrf-token'] as string | undefined) ?? (typeof body?._csrf === 'string' ? body._csrf : undefined);
    if (!sent || !constantTimeEqual(sent, req.csrfToken())) {
      throw new ForbiddenError('The form has expired or did not come from this site. Reload the page and try again.');
    }
  });
});
