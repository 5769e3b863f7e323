import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hashPassword, PASSWORD_MAX_CHARS, passwordProblem } from '../auth/passwords.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html } from '../views/html.ts';
import { findResetTarget, useResetLink } from './user-detail-queries.ts';

const GONE = 'This reset link does not work: it was used already, it expired, or a newer one replaced it. Ask an admin for a new one.';
/** Tokens are 32 random bytes in base64url (src/crypto/tokens.ts): anything else is not worth a query. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,100}$/;

function tokenOf(params: unknown): string {
  const token = (params as Record<string, unknown> | undefined)?.token;
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) throw new NotFoundError(GONE);
  return token;
}

const form = (csrfToken: string, username: string, error?: string) =>
  html`<h1 class="h4 mb-3">Choose a new password</h1>
<div class="row"><div class="col-12 col-md-8 col-lg-5"><div class="card"><div class="card-body">
  <p>For the account <strong>${username}</strong>. Setting it signs this account out everywhere.</p>
  ${formAlert(error)}
  <form method="post" novalidate>
    ${csrfField(csrfToken)}
    ${field({ name: 'password', label: 'New password', type: 'password', error, autocomplete: 'new-password', maxlength: PASSWORD_MAX_CHARS, autofocus: true })}
    <button class="btn btn-primary" type="submit">Set password</button>
  </form>
</div></div></div></div>`;

/**
 * The token is the page's address, so no request from the page may name that address in its Referer (a reverse
 * proxy's access log records the Referer of the stylesheet request). `no-referrer` did that, but it also makes
 * Chromium send `Origin: null` with the form post, which the CSRF check refuses as cross-origin: the link could not
 * be used (issue 16). `strict-origin` sends only our origin as the Referer and keeps the real Origin header, so the
 * CSRF check stays as strict as everywhere else. Set for every answer of these routes: the refused form and the
 * error pages too.
 */
async function keepTokenOutOfReferer(_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('referrer-policy', 'strict-origin');
}

/**
 * The page an admin's one-time link opens (src/admin/user-detail-queries.ts): anyone holding the link may use it
 * once within the hour, signed in or not; the token is the credential. The page is never cached (pages.ts).
 */
export async function passwordResetRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;

  app.get('/reset-password/:token', { onRequest: keepTokenOutOfReferer }, async (req, reply) => {
    const target = await findResetTarget(db, tokenOf(req.params));
    if (!target) throw new NotFoundError(GONE);
    return reply.page({ title: 'New password', body: form(req.csrfToken(), target.username) });
  });

  app.post('/reset-password/:token', { onRequest: keepTokenOutOfReferer }, async (req, reply) => {
    const token = tokenOf(req.params);
    const target = await findResetTarget(db, token);
    if (!target) throw new NotFoundError(GONE);
    const password = (req.body as Record<string, unknown> | undefined)?.password;
    const problem = typeof password === 'string' ? passwordProblem(password) : 'Enter the new password once.';
    if (problem || typeof password !== 'string')
      return reply.page({ title: 'New password', body: form(req.csrfToken(), target.username, problem ?? undefined) }, 400);
    if (!(await useResetLink(db, token, await hashPassword(password)))) throw new NotFoundError(GONE);
    reply.flash('success', 'Your password is set: sign in with it.');
    return reply.redirect('/login', 303);
  });
}
