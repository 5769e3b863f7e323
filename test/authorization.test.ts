import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { AuthorizationWorld, type Browser, IDENTITIES, type Identity, METRICS_TOKEN } from './authorization-world.ts';

/**
 * Who may call what, for every route of the app. Each route is one line:
 *   [method, route as registered, then one outcome per identity (the columns below), url to request (default: `:params` → 999999;
 *    `{user}` is the user's account id)]
 * The identities (built in authorization-world.ts, a fresh browser for every request):
 *   anon       no cookies but the CSRF one
 *   2fa        second factor pending: the password was right for an account with 2FA (an admin's); it may reach the second
 *              step and sign-out, nothing else
 *   glink      Google link pending: back from Google with an identity whose e-mail has a local account, holding the sealed
 *              link cookie and no session; it may reach the link page, nothing else
 *   user       a signed-in user
 *   deact      a session made while the account was active; the account has been deactivated since
 *   admin      a signed-in admin
 *   demoted    a session made while the account was an admin; it has been demoted since (by another admin)
 * Outcomes:
 *   ok        200 (the page, JSON or file in full)
 *   csv       200 with a text/csv body
 *   file      200 and no Set-Cookie
 *   allow     the guard lets the caller through (any answer but 401/403/5xx or a redirect to /login;
 *             a 400 for the empty body or a 404 for the made-up id is fine: the handler ran)
 *   login     signed-out: pages redirect to /login, JSON (/api/*) answers 401
 *   forbidden 403
 *   to-chat   a redirect to /chat (sign-in pages for someone already signed in)
 *   to-2fa    pages redirect to /login/2fa, JSON (/api/*) answers 401 (a second-factor-pending session)
 *   signs-out a redirect to /login that also clears the session cookie (the guard's redirect does not)
 *   bearer    401 with a `WWW-Authenticate: Bearer` challenge (a route whose credential is a bearer token, not a session)
 * Every state-changing line (POST, PATCH, DELETE) is tried three times per identity: with the browser's valid CSRF token,
 * when the outcome above must hold (so a 403 there can only come from a guard); without a token, and with the valid token
 * of another browser of the same kind, when the answer must be 403 whoever asks. A refused request (every outcome but ok,
 * csv, file, allow and signs-out; every request without its own token) must change nothing: the whole database is compared
 * before and after it.
 * A route registered in the app but missing here fails the first test: add its line when you add the route.
 */
type Outcome = 'ok' | 'csv' | 'file' | 'allow' | 'login' | 'forbidden' | 'to-chat' | 'to-2fa' | 'signs-out' | 'bearer';
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Rule = [
  method: Method,
  route: string,
  anon: Outcome,
  twoFactor: Outcome,
  glink: Outcome,
  user: Outcome,
  deact: Outcome,
  admin: Outcome,
  demoted: Outcome,
  url?: string,
];

// biome-ignore format: one line per route, its outcomes in columns.
const matrix: Rule[] = [
  //                                                    anon         2fa          glink        user         deact        admin        demoted
  // public
  ['GET', '/healthz',                                   'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        'ok'],
  ['GET', '/readyz',                                    'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        'ok'],
  ['GET', '/',                                          'login',     'to-2fa',    'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  // metrics (src/metrics), there because this app has a METRICS_TOKEN: the bearer token is its one credential, a session counts for
  // nothing (the token itself: "GET /metrics takes the bearer token" below)
  ['GET', '/metrics',                                   'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer'],
  // static files (src/http/static-files.ts): the same for everyone, never with a cookie (shared caches keep them)
  ['GET', '/static/*',                                  'file',      'file',      'file',      'file',      'file',      'file',      'file',      '/static/app.css'],
  ['GET', '/static/vendor/*',                           'file',      'file',      'file',      'file',      'file',      'file',      'file',      '/static/vendor/css/bootstrap.min.css'],
  // sign-in and registration (src/auth)
  ['GET', '/login',                                     'ok',        'to-2fa',    'ok',        'to-chat',   'ok',        'to-chat',   'to-chat'],
  ['POST', '/login',                                    'allow',     'allow',     'allow',     'to-chat',   'allow',     'to-chat',   'to-chat'],
  ['GET', '/register',                                  'ok',        'to-2fa',    'ok',        'to-chat',   'ok',        'to-chat',   'to-chat'],
  ['POST', '/register',                                 'allow',     'to-2fa',    'allow',     'to-chat',   'allow',     'to-chat',   'to-chat'],
  ['POST', '/logout',                                   'login',     'signs-out', 'login',     'signs-out', 'login',     'signs-out', 'signs-out'],
  ['GET', '/login/2fa',                                 'login',     'ok',        'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  ['POST', '/login/2fa',                                'login',     'allow',     'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  // passkeys (src/auth/passkey-sign-in-routes.ts): the options answer JSON with a challenge bound to the browser; the assertion is a form post
  ['POST', '/login/passkey/options',                    'ok',        'ok',        'ok',        'to-chat',   'ok',        'to-chat',   'to-chat'],
  ['POST', '/login/passkey',                            'allow',     'allow',     'allow',     'to-chat',   'allow',     'to-chat',   'to-chat'],
  ['POST', '/login/2fa/passkey/options',                'login',     'ok',        'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  ['POST', '/login/2fa/passkey',                        'login',     'allow',     'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  // Google sign-in (src/auth/google-routes.ts), configured against the loopback provider. Without a flow or link of its own,
  // the callback and the link page send the browser to /login; the link page is the Google link browser's only door.
  ['GET', '/login/google',                              'allow',     'to-2fa',    'allow',     'to-chat',   'allow',     'to-chat',   'to-chat'],
  ['GET', '/login/google/authorized',                   'login',     'to-2fa',    'login',     'to-chat',   'login',     'to-chat',   'to-chat'],
  ['GET', '/login/google/link',                         'login',     'to-2fa',    'ok',        'to-chat',   'login',     'to-chat',   'to-chat'],
  ['POST', '/login/google/link',                        'login',     'to-2fa',    'allow',     'to-chat',   'login',     'to-chat',   'to-chat'],
  ['GET', '/login/google/link/complete',                'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // chat pages (src/chat)
  ['GET', '/chat',                                      'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['GET', '/chat/:id',                                  'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/chat/search',                               'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok',        '/chat/search?q=hello'],
  // chat API (src/chat): JSON, so signed-out callers get 401; another user's chat is a 404 (authorization-objects.test.ts)
  ['POST', '/api/chats',                                'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/api/chats',                                 'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok',        '/api/chats?q=hello'],
  ['GET', '/api/chats/:id',                             'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['PATCH', '/api/chats/:id',                           'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['DELETE', '/api/chats/:id',                          'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/api/chats/:id/messages',                   'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/api/chats/:id/regenerate',                 'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/api/chats/:id/messages/:idmessage/edit',   'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/api/chats/:id/responses/:idresponse/stop', 'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // export and import (src/chat/transfer-routes.ts): a made-up chat's export is a 404; the import without a file a 400
  ['GET', '/api/chats/:id/export',                      'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow',     '/api/chats/999999/export?format=md'],
  ['GET', '/settings/export',                           'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/import',                          'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/api/chats/:id/attachments/:idattachment',  'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // one's own account (src/settings); /2fa/qrcode.png answers 404 without an enrolment in progress
  ['GET', '/settings',                                  'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/profile',                         'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/password',                        'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/password/new',                    'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/sessions/revoke',                 'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/sessions/revoke-others',          'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/google/unlink',                   'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/settings/2fa',                              'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/2fa',                             'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/2fa/qrcode.png',                            'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // the step-up's "confirm it's you" form (src/auth/step-up-routes.ts): any signed-in user, about their own account; these
  // identities have no password and no 2FA, so the form's proof is a new sign-in: posting it signs out (to /login?next=)
  ['GET', '/settings/confirm',                          'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/confirm/passkey/options',         'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/confirm/passkey',                 'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // Settings → Passkeys (src/settings/passkey-routes.ts): adding and removing need a recent proof (a redirect to the confirm form is 'allow')
  ['GET', '/settings/passkeys',                         'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/passkeys/options',                'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/passkeys',                        'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/passkeys/:id/rename',             'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/passkeys/:id/remove',             'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/confirm',                         'login',     'to-2fa',    'login',     'signs-out', 'login',     'signs-out', 'signs-out'],
  // personal API keys (src/api): creating one needs a recent proof (step-up), which these sessions have not given: the page's
  // form goes to /settings/confirm, the JSON route answers 403; revoking needs only the session (a made-up id: 404)
  ['GET', '/settings/api-keys',                         'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/settings/api-keys',                        'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['POST', '/settings/api-keys/:id/revoke',             'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  ['GET', '/api/keys',                                  'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['POST', '/api/keys',                                 'login',     'to-2fa',    'login',     'forbidden', 'login',     'forbidden', 'forbidden'],
  ['DELETE', '/api/keys/:id',                           'login',     'to-2fa',    'login',     'allow',     'login',     'allow',     'allow'],
  // the OpenAI-compatible API (src/api): a key is its one credential, a cookie counts for nothing, so there is no CSRF
  // surface (tried with the token only); the keys themselves: "the /v1 routes take a key" below
  ['GET', '/v1/models',                                 'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer'],
  ['POST', '/v1/chat/completions',                      'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer',    'bearer'],
  // admin: model connections (src/admin)
  ['GET', '/admin/models',                              'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['POST', '/admin/models',                             'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['GET', '/admin/models/:id/edit',                     'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id',                         'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/enable',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/disable',                 'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/delete',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/default',                 'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/test',                    'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  // statistics (src/stats): the admin pages and every CSV they offer, and each user's own usage
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats?format=csv&table=prompts_per_user'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats?format=csv&table=average_per_model'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats?format=csv&table=models'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats?format=csv&table=users'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats?format=csv&table=daily'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden', '/admin/stats?group=999999'],
  ['GET', '/admin/stats',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden', '/admin/stats?group=abc&format=csv&table=users'],
  ['GET', '/admin/stats/users/:id',                     'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden', '/admin/stats/users/{user}'],
  ['GET', '/admin/stats/users/:id',                     'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/stats/users/{user}?format=csv'],
  ['GET', '/settings/usage',                            'login',     'to-2fa',    'login',     'ok',        'login',     'ok',        'ok'],
  ['GET', '/settings/usage',                            'login',     'to-2fa',    'login',     'csv',       'login',     'csv',       'csv',       '/settings/usage?format=csv'],
  // admin: users and the audit log (src/admin), the log's CSV too
  ['GET', '/admin/users',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['POST', '/admin/users/:id/promote',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/demote',                   'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/deactivate',               'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/reactivate',               'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/bulk',                         'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['GET', '/admin/users/new',                           'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['POST', '/admin/users/new',                          'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['GET', '/admin/users/:id',                           'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden', '/admin/users/{user}'],
  ['POST', '/admin/users/:id/sign-out-everywhere',      'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/sessions/revoke',          'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/reset-2fa',                'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/remove-passkeys',          'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/reset-link',               'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/limits',                   'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  // groups, model access and limits (src/admin/groups-*.ts, docs/decisions/016)
  ['GET', '/admin/groups',                              'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['POST', '/admin/groups',                             'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['GET', '/admin/groups/:id',                          'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/groups/:id/settings',                'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/groups/:id/delete',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/groups/:id/limits',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/groups/:id/members',                 'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/groups/:id/members/remove',          'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/models/:id/access',                  'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['POST', '/admin/users/:id/api-keys/:keyId/revoke',   'login',     'to-2fa',    'login',     'forbidden', 'login',     'allow',     'forbidden'],
  ['GET', '/admin/audit',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'ok',        'forbidden'],
  ['GET', '/admin/audit',                               'login',     'to-2fa',    'login',     'forbidden', 'login',     'csv',       'forbidden', '/admin/audit?format=csv'],
  // the one-time reset link's page: the token is the credential, so no guard (a made-up token is a 404)
  ['GET', '/reset-password/:token',                     'allow',     'allow',     'allow',     'allow',     'allow',     'allow',     'allow'],
  ['POST', '/reset-password/:token',                    'allow',     'allow',     'allow',     'allow',     'allow',     'allow',     'allow'],
];

const UNSAFE = new Set<Method>(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Routes whose only credential is a bearer token read no cookie, so a CSRF token means nothing to them. */
const bearerOnly = (rule: Rule): boolean => IDENTITIES.every((identity) => outcomeOf(rule, identity) === 'bearer');
/** The lines asked with, without and with another browser's CSRF token. */
const csrfChecked = (rule: Rule): boolean => UNSAFE.has(rule[0]) && !bearerOnly(rule);
/** Outcomes where the request got through to do its work; every other one must leave the database as it was. */
const ADMITTED = new Set<Outcome>(['ok', 'csv', 'file', 'allow', 'signs-out']);

let world: AuthorizationWorld;
before(async () => {
  world = await AuthorizationWorld.start();
});
after(() => world.close());

const key = ([method, route]: Rule) => `${method} ${route}`;
const urlOf = (rule: Rule): string => (rule[9] ?? rule[1].replace(/:\w+/g, '999999')).replace('{user}', String(world.ids.user));
const outcomeOf = (rule: Rule, identity: Identity): Outcome => rule[2 + IDENTITIES.indexOf(identity)] as Outcome;

/** `token`: what the request carries as its CSRF token (header for JSON, `_csrf` field for forms), if anything. */
async function call(rule: Rule, browser: Browser, token: string | undefined): Promise<LightMyRequestResponse> {
  const [method, route] = rule;
  const json = route.startsWith('/api/') || route.startsWith('/v1/');
  const headers: Record<string, string> = token === undefined ? {} : { 'x-csrf-token': token };
  let payload: string | undefined;
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    payload = json ? '{}' : new URLSearchParams(token === undefined ? {} : { _csrf: token }).toString();
  }
  return world.app.inject({ method, url: urlOf(rule), cookies: browser.cookies, headers, payload });
}

function describeAnswer(res: LightMyRequestResponse): string {
  return `${res.statusCode}${res.headers.location ? ` → ${res.headers.location}` : ''}`;
}

function matches(outcome: Outcome, res: LightMyRequestResponse, json: boolean): boolean {
  const redirect = res.statusCode >= 300 && res.statusCode < 400;
  const location = String(res.headers.location ?? '');
  switch (outcome) {
    case 'ok':
      return res.statusCode === 200;
    case 'csv':
      return res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/csv');
    case 'file':
      return res.statusCode === 200 && res.headers['set-cookie'] === undefined;
    case 'login':
      return json ? res.statusCode === 401 : redirect && /^\/login(\?|$)/.test(location);
    case 'forbidden':
      return res.statusCode === 403;
    case 'bearer':
      return res.statusCode === 401 && /^Bearer /.test(String(res.headers['www-authenticate']));
    case 'to-chat':
      return redirect && location === '/chat';
    case 'to-2fa':
      return json ? res.statusCode === 401 : redirect && /^\/login\/2fa(\?|$)/.test(location);
    case 'signs-out': {
      const cleared = (res.cookies as Array<{ name: string; value: string; maxAge?: number; expires?: Date }>).some(
        (c) => c.name === 'parley_session' && (c.value === '' || c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() <= Date.now())),
      );
      return redirect && /^\/login(\?|$)/.test(location) && cleared;
    }
    case 'allow':
      return res.statusCode < 500 && res.statusCode !== 401 && res.statusCode !== 403 && !(redirect && location.startsWith('/login'));
  }
}

/** Every request the matrix makes, counted: (line, identity, with/without token); and those of the bearer-token test. */
let asked = 0;
let bearerAsked = 0;

describe('the matrix covers the app', () => {
  test('every route the app registers has a line in the matrix (add one for a new route)', () => {
    assert.ok(world.registered.has('POST /login'), 'the onRoute hook saw the routes');
    const listed = new Set(matrix.map(key));
    const missing = [...world.registered].filter((r) => !listed.has(r)).sort();
    assert.deepEqual(missing, [], `routes without a line in test/authorization.test.ts: ${missing.join(', ')}`);
  });

  test('every state-changing route in particular', () => {
    const unsafe = [...world.registered].filter((r) => UNSAFE.has(r.split(' ')[0] as Method));
    assert.ok(unsafe.length >= 30, `only ${unsafe.length} state-changing routes seen`);
    for (const r of unsafe)
      assert.ok(
        matrix.some((rule) => key(rule) === r),
        `${r} is not in the matrix`,
      );
  });

  test('every line of the matrix is a registered route, and no request is listed twice', () => {
    const stale = matrix.map(key).filter((k) => !world.registered.has(k));
    assert.deepEqual(stale, []);
    const requests = matrix.map((rule) => `${rule[0]} ${urlOf(rule)}`);
    assert.equal(new Set(requests).size, matrix.length, 'a request is listed twice');
  });
});

type TokenVariant = 'with token' | 'without token' | "with another browser's token";

describe('each route answers each kind of visitor as the matrix says, with and without the CSRF token', () => {
  for (const rule of matrix) {
    const variants: TokenVariant[] = csrfChecked(rule) ? ['with token', 'without token', "with another browser's token"] : ['with token'];
    test(`${key(rule)}${rule[9] ? ` (${rule[9]})` : ''}`, async () => {
      const problems: string[] = [];
      const json = rule[1].startsWith('/api/');
      for (const identity of IDENTITIES) {
        for (const variant of variants) {
          const expected: Outcome | 'csrf' = variant === 'with token' ? outcomeOf(rule, identity) : 'csrf';
          const browser = await world.browser(identity);
          const token = variant === 'with token' ? browser.csrf : variant === 'without token' ? undefined : (await world.browser(identity)).csrf;
          const refused = expected === 'csrf' || !ADMITTED.has(expected);
          const before = refused ? await world.fingerprint() : '';
          const res = await call(rule, browser, token);
          asked++;
          const label = `${identity} ${variant}`;
          const answered = expected === 'csrf' ? res.statusCode === 403 : matches(expected, res, json);
          if (!answered) problems.push(`${label}: expected ${expected === 'csrf' ? '403 (CSRF)' : expected}, got ${describeAnswer(res)}`);
          else if (refused && (await world.fingerprint()) !== before) problems.push(`${label}: refused (${describeAnswer(res)}) but the database changed`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }
});

describe('GET /metrics takes the bearer token, whoever asks', () => {
  const tries: Array<[how: string, headers: Record<string, string>, url: string, status: number]> = [
    ['no token', {}, '/metrics', 401],
    ['a wrong token', { authorization: 'Bearer not-the-metrics-token-0123456789' }, '/metrics', 401],
    ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` }, '/metrics', 401],
    ['the token in the query string', {}, `/metrics?access_token=${METRICS_TOKEN}`, 401],
    ['the right token', { authorization: `Bearer ${METRICS_TOKEN}` }, '/metrics', 200],
  ];
  test(tries.map(([how, , , status]) => `${how}: ${status}`).join(', '), async () => {
    const problems: string[] = [];
    for (const identity of IDENTITIES) {
      for (const [how, headers, url, status] of tries) {
        const res = await world.app.inject({ method: 'GET', url, headers, cookies: (await world.browser(identity)).cookies });
        bearerAsked++;
        const scraped = status !== 200 || (res.body.includes('# TYPE ') && String(res.headers['content-type']).startsWith('text/plain'));
        if (res.statusCode !== status || !scraped) problems.push(`${identity}, ${how}: expected ${status}, got ${res.statusCode}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});

describe('the /v1 routes take a key, and a key opens nothing else', () => {
  const routes: Array<[method: 'GET' | 'POST', url: string]> = [
    ['GET', '/v1/models'],
    ['POST', '/v1/chat/completions'],
  ];
  const body = JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
  test("no key, a wrong key, a revoked or expired one, a deactivated user's, a cookie only: 401; the valid key gets through", async () => {
    const keys = await world.apiKeys();
    const cases: Array<[how: string, key: string | null, status: number]> = [
      ['no key', null, 401],
      ['a wrong key', `prl_${'W'.repeat(43)}`, 401],
      ['a revoked key', keys.revoked, 401],
      ['an expired key', keys.expired, 401],
      ["a deactivated user's key", keys.deactivated, 401],
      ['the key in the query string', null, 401],
      ['the valid key', keys.valid, 0],
    ];
    const problems: string[] = [];
    for (const [method, url] of routes) {
      for (const [how, key, status] of cases) {
        // Every request also carries a signed-in user's cookies: they count for nothing here.
        const cookies = (await world.browser('user')).cookies;
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
        const target = how === 'the key in the query string' ? `${url}?api_key=${keys.valid}` : url;
        const res = await world.app.inject({ method, url: target, headers, cookies, payload: method === 'POST' ? body : undefined });
        bearerAsked++;
        const ok = status === 0 ? res.statusCode === 200 || (method === 'POST' && res.statusCode === 404) : res.statusCode === status;
        if (!ok) problems.push(`${method} ${url}, ${how}: got ${res.statusCode}`);
        if (status === 401 && !/^Bearer /.test(String(res.headers['www-authenticate']))) problems.push(`${method} ${url}, ${how}: no Bearer challenge`);
      }
    }
    // A valid key opens no page and no /api route.
    for (const url of ['/api/keys', '/settings', '/chat', '/admin/users']) {
      const res = await world.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${keys.valid}` } });
      bearerAsked++;
      if (!matches('login', res, url.startsWith('/api/'))) problems.push(`${url} with a key: got ${describeAnswer(res)}`);
    }
    await world.database.db.deleteFrom('chatbot_schema.login_throttle').execute();
    assert.deepEqual(problems, []);
  });
});

describe('the proof itself', () => {
  test('the database comparison sees a single write', async () => {
    const before = await world.fingerprint();
    await world.browser('user');
    assert.notEqual(await world.fingerprint(), before, 'a new session row changes it');
    const again = await world.fingerprint();
    await world.database.db
      .updateTable('chatbot_schema.session')
      .set({ dtlast_seen: new Date(0) })
      .where('idappuser', '=', world.ids.user)
      .execute();
    assert.notEqual(await world.fingerprint(), again, 'one changed column of one row changes it');
  });

  test('its size', (t) => {
    const unsafe = matrix.filter(csrfChecked).length;
    assert.equal(
      asked,
      (matrix.length + 2 * unsafe) * IDENTITIES.length,
      'every line was asked of every identity, the state-changing ones with, without and with a foreign token',
    );
    assert.equal(bearerAsked, 5 * IDENTITIES.length + 2 * 7 + 4);
    t.diagnostic(
      `${matrix.length} lines (${unsafe} state-changing) × ${IDENTITIES.length} identities × {with, without, another browser's token} → ${asked} answers, + ${bearerAsked} bearer-token answers`,
    );
  });
});
