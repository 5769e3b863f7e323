import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import { createSession } from '../src/auth/sessions.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { createUser, grantAdmin } from '../src/users/user-queries.ts';
import { testConfig } from './app.ts';
import { openTestDatabase } from './database.ts';

/**
 * Who may call what, for every route of the app. Each route is one line:
 *   [method, route as registered, anonymous, second-factor pending, user, admin, url to request (default: `:params` → 999999)]
 * "Second-factor pending" is a browser whose password was right for an account with 2FA: it may reach the second
 * step and sign-out, nothing else.
 * Outcomes:
 *   allow     the guard lets the caller through (any answer but 401/403/5xx or a redirect to /login;
 *             a 400 for the empty body or a 404 for the made-up id is fine: the handler ran)
 *   login     signed-out: pages redirect to /login, JSON (/api/*) answers 401
 *   forbidden 403
 *   to-chat   a redirect to /chat (sign-in pages for someone already signed in)
 *   to-2fa    pages redirect to /login/2fa, JSON (/api/*) answers 401 (a second-factor-pending session)
 *   signs-out a redirect to /login that also clears the session cookie (the guard's redirect does not)
 * Every POST carries a valid CSRF token, so a 403 can only come from a guard.
 * A route registered in the app but missing here fails the first test: add its line when you add the route.
 */
type Outcome = 'allow' | 'login' | 'forbidden' | 'to-chat' | 'to-2fa' | 'signs-out';
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Rule = [method: Method, route: string, anonymous: Outcome, pending: Outcome, user: Outcome, admin: Outcome, url?: string];

const matrix: Rule[] = [
  // ── public ──
  ['GET', '/healthz', 'allow', 'allow', 'allow', 'allow'],
  ['GET', '/readyz', 'allow', 'allow', 'allow', 'allow'],
  ['GET', '/', 'login', 'to-2fa', 'to-chat', 'to-chat'],

  // ── sign-in and registration (src/auth) ──
  ['GET', '/login', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['POST', '/login', 'allow', 'allow', 'to-chat', 'to-chat'],
  ['GET', '/register', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['POST', '/register', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['POST', '/logout', 'login', 'signs-out', 'signs-out', 'signs-out'],
  ['GET', '/login/2fa', 'login', 'allow', 'to-chat', 'to-chat'],
  ['POST', '/login/2fa', 'login', 'allow', 'to-chat', 'to-chat'],
  // The code step (POST /login/2fa) and Google sign-in (/login/google, /login/google/authorized, /settings/2fa, /2fa/qrcode.png) go here.
  // Google sign-in (src/auth/google-routes.ts): this app has no GOOGLE_CLIENT_ID, so an anonymous visitor gets 404; with
  // Google configured, the flows and the "Google link pending" state are covered in src/auth/google-auth.test.ts.
  ['GET', '/login/google', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['GET', '/login/google/authorized', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['GET', '/login/google/link', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['POST', '/login/google/link', 'allow', 'to-2fa', 'to-chat', 'to-chat'],
  ['GET', '/login/google/link/complete', 'login', 'to-2fa', 'allow', 'allow'],

  // ── chat pages (src/chat) ──
  ['GET', '/chat', 'login', 'to-2fa', 'allow', 'allow'],
  ['GET', '/chat/:id', 'login', 'to-2fa', 'allow', 'allow'],

  // ── chat API (src/chat): JSON, so signed-out callers get 401 ──
  ['POST', '/api/chats', 'login', 'to-2fa', 'allow', 'allow'],
  ['GET', '/api/chats/:id', 'login', 'to-2fa', 'allow', 'allow'],
  ['PATCH', '/api/chats/:id', 'login', 'to-2fa', 'allow', 'allow'],
  ['DELETE', '/api/chats/:id', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/api/chats/:id/messages', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/api/chats/:id/regenerate', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/api/chats/:id/responses/:idresponse/stop', 'login', 'to-2fa', 'allow', 'allow'],
  // Further /api/chats/* routes go here.

  // ── one's own account (src/settings); /2fa/qrcode.png answers 404 without an enrolment in progress ──
  ['GET', '/settings', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/profile', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/password', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/password/new', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/sessions/revoke', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/sessions/revoke-others', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/google/unlink', 'login', 'to-2fa', 'allow', 'allow'],
  ['GET', '/settings/2fa', 'login', 'to-2fa', 'allow', 'allow'],
  ['POST', '/settings/2fa', 'login', 'to-2fa', 'allow', 'allow'],
  ['GET', '/2fa/qrcode.png', 'login', 'to-2fa', 'allow', 'allow'],

  // ── admin: model connections (src/admin) ──
  ['GET', '/admin/models', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/admin/models/:id/edit', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models/:id', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models/:id/enable', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models/:id/disable', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models/:id/delete', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/models/:id/test', 'login', 'to-2fa', 'forbidden', 'allow'],

  // ── statistics (src/stats): admin pages, and each user's own usage ──
  ['GET', '/admin/stats', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/admin/stats/users/:id', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/settings/usage', 'login', 'to-2fa', 'allow', 'allow'],

  // ── admin: users and the audit log (src/admin) ──
  ['GET', '/admin/users', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/promote', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/demote', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/deactivate', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/reactivate', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/bulk', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/admin/users/new', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/new', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/admin/users/:id', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/sign-out-everywhere', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/sessions/revoke', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/reset-2fa', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['POST', '/admin/users/:id/reset-link', 'login', 'to-2fa', 'forbidden', 'allow'],
  ['GET', '/admin/audit', 'login', 'to-2fa', 'forbidden', 'allow'],
  // The one-time reset link's page: the token is the credential, so no guard (a made-up token is a 404).
  ['GET', '/reset-password/:token', 'allow', 'allow', 'allow', 'allow'],
  ['POST', '/reset-password/:token', 'allow', 'allow', 'allow', 'allow'],

  // ── admin: users and stats (/admin/users, /admin/users/:id/promote|demote|deactivate|reactivate, /admin/stats) go here,
  //    each as ['…', '/admin/…', 'login', 'to-2fa', 'forbidden', 'allow'] ──
];

const roles = ['anonymous', 'pending', 'user', 'admin'] as const;
type Role = (typeof roles)[number];

let database: OpenedDatabase;
let app: FastifyInstance;
const registered = new Set<string>();
const ids: Record<Exclude<Role, 'anonymous'>, number> = { pending: 0, user: 0, admin: 0 };

before(async () => {
  database = await openTestDatabase();
  app = await buildApp({
    config: testConfig(),
    db: database.db,
    onRoute: (route) => {
      for (const method of [route.method].flat()) {
        // HEAD mirrors GET; static files are public by design.
        if (method !== 'HEAD' && !route.url.startsWith('/static/')) registered.add(`${method} ${route.url}`);
      }
    },
  });
  await app.ready();
  ids.admin = (await createUser(database.db, { username: 'Admin', email: 'admin@example.com', passwordHash: null })).id;
  ids.user = (await createUser(database.db, { username: 'User', email: 'user@example.com', passwordHash: null })).id;
  // An admin with 2FA half-way through signing in: even admin rights must not leak through a pending session.
  ids.pending = (await createUser(database.db, { username: 'Pending', email: 'pending@example.com', passwordHash: null })).id;
  await grantAdmin(database.db, ids.pending);
  await database.db.updateTable('chatbot_schema.app_user').set({ is_2fa_enabled: true }).where('idappuser', '=', ids.pending).execute();
});
after(async () => {
  await app.close();
  await database.close();
});

const key = ([method, route]: Rule) => `${method} ${route}`;

/** A fresh browser for each request (POST /logout must not sign out the next row), with its CSRF token. */
async function visitor(role: Role): Promise<{ cookies: Record<string, string>; csrf: string }> {
  const cookies: Record<string, string> = {};
  if (role !== 'anonymous') cookies.parley_session = await createSession(database.db, ids[role], { secondFactorPending: role === 'pending' });
  // Any page carries the token; the 404 page exists for everyone whatever the routes.
  const page = await app.inject({ method: 'GET', url: '/__authorization-matrix__', cookies });
  for (const c of page.cookies as Array<{ name: string; value: string }>) if (c.name === 'parley_csrf') cookies[c.name] = c.value;
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1];
  assert.ok(csrf, 'no CSRF token on the 404 page');
  return { cookies, csrf };
}

async function call(rule: Rule, role: Role): Promise<LightMyRequestResponse> {
  const [method, route, , , , , url = route.replace(/:\w+/g, '999999')] = rule;
  const { cookies, csrf } = await visitor(role);
  const json = route.startsWith('/api/');
  const headers: Record<string, string> = { 'x-csrf-token': csrf };
  let payload: string | undefined;
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    payload = json ? '{}' : new URLSearchParams({ _csrf: csrf }).toString();
  }
  return app.inject({ method, url, cookies, headers, payload });
}

function describeAnswer(res: LightMyRequestResponse): string {
  return `${res.statusCode}${res.headers.location ? ` → ${res.headers.location}` : ''}`;
}

function matches(outcome: Outcome, res: LightMyRequestResponse, json: boolean): boolean {
  const redirect = res.statusCode >= 300 && res.statusCode < 400;
  const location = String(res.headers.location ?? '');
  switch (outcome) {
    case 'login':
      return json ? res.statusCode === 401 : redirect && /^\/login(\?|$)/.test(location);
    case 'forbidden':
      return res.statusCode === 403;
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

describe('the matrix covers the app', () => {
  test('every route the app registers has a line in the matrix (add one for a new route)', () => {
    assert.ok(registered.has('POST /login'), 'the onRoute hook saw the routes');
    const listed = new Set(matrix.map(key));
    const missing = [...registered].filter((r) => !listed.has(r)).sort();
    assert.deepEqual(missing, [], `routes without a line in test/authorization.test.ts: ${missing.join(', ')}`);
  });

  test('every POST route in particular (the state-changing ones)', () => {
    const posts = [...registered].filter((r) => r.startsWith('POST '));
    assert.ok(posts.length >= 3);
    for (const r of posts)
      assert.ok(
        matrix.some((rule) => key(rule) === r),
        `${r} is not in the matrix`,
      );
  });

  test('every line of the matrix is a registered route (no stale lines)', () => {
    const stale = matrix.map(key).filter((k) => !registered.has(k));
    assert.deepEqual(stale, []);
    assert.equal(new Set(matrix.map(key)).size, matrix.length, 'a route is listed twice');
  });
});

describe('each route answers each kind of visitor as the matrix says', () => {
  for (const rule of matrix) {
    test(key(rule), async () => {
      const problems: string[] = [];
      for (const [i, role] of roles.entries()) {
        const expected = rule[2 + i] as Outcome;
        const res = await call(rule, role);
        if (!matches(expected, res, rule[1].startsWith('/api/'))) problems.push(`${role}: expected ${expected}, got ${describeAnswer(res)}`);
      }
      assert.deepEqual(problems, []);
    });
  }
});
