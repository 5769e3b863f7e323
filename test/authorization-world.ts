import assert from 'node:assert/strict';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { applyUserAction } from '../src/admin/user-actions.ts';
import { createApiKey, revokeApiKey } from '../src/api/api-key-queries.ts';
import { buildApp } from '../src/app.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { createSession } from '../src/auth/sessions.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { createUser, grantAdmin } from '../src/users/user-queries.ts';
import { testConfig } from './app.ts';
import { DEFAULT_PASSWORD, TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';
import { TestProvider } from './google-provider.ts';

/**
 * The app the authorization tests call, with Google configured against a real OpenID provider on loopback (so the
 * /login/google* routes answer for real instead of 404) and METRICS_TOKEN set, and one account per kind of visitor.
 * `browser(identity)` makes a fresh browser of that kind for each request: POST /logout or "sign out other
 * sessions" in one line must not change who the next line is.
 */
export const IDENTITIES = ['anonymous', 'pending2fa', 'googleLink', 'user', 'deactivated', 'admin', 'demoted'] as const;
export type Identity = (typeof IDENTITIES)[number];

export const METRICS_TOKEN = 'authorization-matrix-metrics-token-0123456789';

export interface Browser {
  cookies: Record<string, string>;
  /** The CSRF token the browser's last page carried (bound to its session, or to its anonymous cookie). */
  csrf: string;
}

export class AuthorizationWorld {
  readonly app: FastifyInstance;
  readonly database: OpenedDatabase;
  /** `METHOD /route` of every route the app registered, as Fastify's onRoute hook saw them. */
  readonly registered: Set<string>;
  /** Account ids: the second-factor-pending browser's, the Google link's, the user's… (anonymous has none). */
  readonly ids: Record<Exclude<Identity, 'anonymous'>, number>;
  readonly #provider: TestProvider;
  readonly #linkCookie: [string, string];
  #tables: string[] = [];

  private constructor(init: {
    app: FastifyInstance;
    database: OpenedDatabase;
    registered: Set<string>;
    ids: AuthorizationWorld['ids'];
    provider: TestProvider;
    linkCookie: [string, string];
  }) {
    this.app = init.app;
    this.database = init.database;
    this.registered = init.registered;
    this.ids = init.ids;
    this.#provider = init.provider;
    this.#linkCookie = init.linkCookie;
  }

  static async start(): Promise<AuthorizationWorld> {
    const provider = new TestProvider();
    await provider.start();
    const database = await openTestDatabase().catch(async (err) => {
      await provider.stop();
      throw err;
    });
    try {
      return await AuthorizationWorld.#build(provider, database);
    } catch (err) {
      // Nothing may stay open (the provider's server would keep the test process alive forever).
      await database.close();
      await provider.stop();
      throw err;
    }
  }

  static async #build(provider: TestProvider, database: OpenedDatabase): Promise<AuthorizationWorld> {
    const registered = new Set<string>();
    const app = await buildApp({
      config: testConfig(provider.env({ METRICS_TOKEN })),
      db: database.db,
      onRoute: (route) => {
        for (const method of [route.method].flat()) {
          // HEAD answers as GET does (Fastify runs the GET handler).
          if (method !== 'HEAD') registered.add(`${method} ${route.url}`);
        }
      },
    });
    try {
      await app.ready();
      return await AuthorizationWorld.#populate(app, database, registered, provider);
    } catch (err) {
      await app.close();
      throw err;
    }
  }

  static async #populate(app: FastifyInstance, database: OpenedDatabase, registered: Set<string>, provider: TestProvider): Promise<AuthorizationWorld> {
    const db = database.db;
    const make = async (name: string, password = false) =>
      (
        await createUser(db, {
          username: name,
          email: `${name.toLowerCase()}@example.com`,
          passwordHash: password ? await hashPassword(DEFAULT_PASSWORD) : null,
        })
      ).id;
    // The first account is Admin.
    const admin = await make('Admin');
    const user = await make('User');
    // An admin with 2FA half-way through signing in: even admin rights must not leak through a pending session.
    const pending2fa = await make('Pending');
    await grantAdmin(db, pending2fa);
    await db.updateTable('chatbot_schema.app_user').set({ is_2fa_enabled: true }).where('idappuser', '=', pending2fa).execute();
    const deactivated = await make('Deactivated');
    const demoted = await make('Demoted');
    // A local account with a password, whose address a Google identity comes back with: the link is offered.
    const googleLink = await make('Linker', true);
    const linkCookie = await googleLinkPending(app, provider, 'linker@example.com');
    const world = new AuthorizationWorld({
      app,
      database,
      registered,
      ids: { pending2fa, googleLink, user, deactivated, admin, demoted },
      provider,
      linkCookie,
    });
    await world.#checkIdentities();
    return world;
  }

  /** API keys of the user (valid, revoked, expired) and of the deactivated account, made as the key pages make them. */
  async apiKeys(): Promise<{ valid: string; revoked: string; expired: string; deactivated: string }> {
    const db = this.database.db;
    const author = { id: this.ids.admin, username: 'Admin', ip: null };
    const make = async (owner: number, name: string) => createApiKey(db, author, { id: owner, username: name }, { name, expiresInDays: null });
    const valid = await make(this.ids.user, 'User');
    const revoked = await make(this.ids.user, 'User');
    await revokeApiKey(db, author, { id: this.ids.user, username: 'User' }, revoked.id);
    const expired = await make(this.ids.user, 'User');
    await db
      .updateTable('chatbot_schema.api_key')
      .set({ dtexpires: new Date(Date.now() - 1000) })
      .where('idapikey', '=', expired.id)
      .execute();
    const deactivated = await make(this.ids.deactivated, 'Deactivated');
    await db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('idappuser', '=', this.ids.deactivated).execute();
    return { valid: valid.key, revoked: revoked.key, expired: expired.key, deactivated: deactivated.key };
  }

  async close(): Promise<void> {
    await this.app.close();
    await this.database.close();
    await this.#provider.stop();
  }

  /** A fresh browser of this kind, holding the CSRF token of a page it just loaded. */
  async browser(identity: Identity): Promise<Browser> {
    const db = this.database.db;
    const cookies: Record<string, string> = {};
    switch (identity) {
      case 'anonymous':
        break;
      case 'googleLink':
        cookies[this.#linkCookie[0]] = this.#linkCookie[1];
        break;
      case 'pending2fa':
        cookies.parley_session = await createSession(db, this.ids.pending2fa, { secondFactorPending: true });
        break;
      case 'user':
      case 'admin':
        cookies.parley_session = await createSession(db, this.ids[identity], {});
        break;
      case 'deactivated': {
        // Signed in while active; then the account is switched off under the session. The admin's deactivation also
        // deletes the sessions (user-actions.ts cutOff); this row is left on purpose (as a sign-in racing the
        // deactivation would leave one), so what refuses it is the session check's own "account active" test.
        const id = this.ids.deactivated;
        await db.updateTable('chatbot_schema.app_user').set({ is_active: true }).where('idappuser', '=', id).execute();
        cookies.parley_session = await createSession(db, id, {});
        await db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('idappuser', '=', id).execute();
        break;
      }
      case 'demoted': {
        // Signed in while an admin; then demoted by another admin, the way the admin pages do it.
        const id = this.ids.demoted;
        await grantAdmin(db, id);
        cookies.parley_session = await createSession(db, id, {});
        await applyUserAction(db, { id: this.ids.admin, username: 'Admin', ip: null }, 'demote', [id]);
        break;
      }
    }
    // Any page carries the token; the 404 page exists for everyone whatever the routes.
    const page = await this.app.inject({ method: 'GET', url: '/__authorization-matrix__', cookies });
    for (const c of page.cookies as Array<{ name: string; value: string }>) if (c.name === 'parley_csrf') cookies[c.name] = c.value;
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1];
    assert.ok(csrf, 'no CSRF token on the 404 page');
    return { cookies, csrf };
  }

  /**
   * A digest of every row of every table of the app's schema: equal before and after a request means the request
   * wrote nothing (no insert, update or delete anywhere, sessions and throttles included).
   */
  async fingerprint(): Promise<string> {
    if (this.#tables.length === 0) {
      const rows = await sql<{ name: string }>`
        SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'chatbot_schema' AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(this.database.db);
      this.#tables = rows.rows.map((r) => r.name);
      assert.ok(this.#tables.includes('session') && this.#tables.includes('chat'), 'the schema has its tables');
    }
    const parts = this.#tables.map(
      (t) =>
        sql`SELECT ${t}::text AS t, count(*)::int AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${sql.table(`chatbot_schema.${t}`)} x`,
    );
    const rows = await sql<{ t: string; n: number; h: string }>`${sql.join(parts, sql` UNION ALL `)}`.execute(this.database.db);
    return rows.rows.map((r) => `${r.t}:${r.n}:${r.h}`).join(' ');
  }

  /** Each identity is what it claims before the matrix relies on it (one request each, outside the matrix). */
  async #checkIdentities(): Promise<void> {
    const get = async (identity: Identity, url: string) =>
      (await this.app.inject({ method: 'GET', url, cookies: (await this.browser(identity)).cookies })).statusCode;
    assert.equal(await get('admin', '/admin/users'), 200, 'the admin reaches an admin page');
    assert.equal(await get('user', '/chat'), 200, 'the user reaches the chat');
    assert.equal(await get('googleLink', '/login/google/link'), 200, 'the Google link browser sees the link page');
    // The same kinds of session as browser() makes, checked before and after the account is switched off or demoted:
    // once as browser() does it, once through the admin's own forms (which also end the sessions, or keep them).
    const db = this.database.db;
    const answer = async (url: string, session: string) => {
      const res = await this.app.inject({ method: 'GET', url, cookies: { parley_session: session } });
      return res.headers.location ? `${res.statusCode} ${res.headers.location}` : String(res.statusCode);
    };
    const byAdmin = async (action: 'deactivate' | 'reactivate' | 'demote', id: number) => {
      const admin = await this.browser('admin');
      const res = await this.app.inject({
        method: 'POST',
        url: `/admin/users/${id}/${action}`,
        cookies: admin.cookies,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf: admin.csrf }).toString(),
      });
      assert.equal(res.statusCode, 303, `${action}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    };
    const setActive = (active: boolean) =>
      db.updateTable('chatbot_schema.app_user').set({ is_active: active }).where('idappuser', '=', this.ids.deactivated).execute();
    const refused = /^30\d \/login/;

    await setActive(true);
    const beforeDeactivation = await createSession(db, this.ids.deactivated, {});
    assert.equal(await answer('/chat', beforeDeactivation), '200');
    await setActive(false);
    assert.match(await answer('/chat', beforeDeactivation), refused, "the deactivated account's session is refused at its next request");
    await setActive(true);
    const beforeAdminDeactivation = await createSession(db, this.ids.deactivated, {});
    assert.equal(await answer('/chat', beforeAdminDeactivation), '200');
    await byAdmin('deactivate', this.ids.deactivated);
    assert.match(await answer('/chat', beforeAdminDeactivation), refused, 'and so after the admin deactivated it');
    await byAdmin('reactivate', this.ids.deactivated);
    assert.match(await answer('/chat', beforeAdminDeactivation), refused, 'reactivation does not bring the old session back');

    for (const demote of [
      (id: number) => applyUserAction(db, { id: this.ids.admin, username: 'Admin', ip: null }, 'demote', [id]),
      (id: number) => byAdmin('demote', id),
    ]) {
      await grantAdmin(db, this.ids.demoted);
      const beforeDemotion = await createSession(db, this.ids.demoted, {});
      assert.equal(await answer('/admin/users', beforeDemotion), '200');
      await demote(this.ids.demoted);
      assert.equal(await answer('/admin/users', beforeDemotion), '403', "a demoted admin's session is refused admin pages at its next request");
      assert.equal(await answer('/chat', beforeDemotion), '200', 'and stays signed in');
    }
  }
}

/** A browser back from the provider with an identity whose e-mail has a local account: the sealed link cookie it holds. */
async function googleLinkPending(app: FastifyInstance, provider: TestProvider, email: string): Promise<[string, string]> {
  provider.claims = { sub: 'g-authorization-matrix', email, email_verified: true };
  const c = new TestClient(app);
  const start = await c.get('/login/google');
  assert.equal(start.statusCode, 302, `GET /login/google answered ${start.statusCode}`);
  const back = new URL(await provider.authorize(String(start.headers.location)));
  const res: LightMyRequestResponse = await c.get(back.pathname + back.search);
  assert.equal(res.headers.location, '/login/google/link', 'the callback offers the link');
  const value = c.cookies.get('parley_google_link');
  assert.ok(value, 'the browser holds the pending-link cookie');
  assert.equal(c.cookies.has('parley_session'), false, 'and no session');
  return ['parley_google_link', value];
}
