import assert from 'node:assert/strict';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../src/app.ts';
import { createChat } from '../src/chat/chat-queries.ts';
import type { Config } from '../src/config.ts';
import { sha256Hex } from '../src/crypto/tokens.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { testConfig } from './app.ts';
import { addModel, parseSse } from './chat-fixtures.ts';
import { DEFAULT_PASSWORD, TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';
import { TestProvider } from './google-provider.ts';
import { encodeBody, type Pair } from './hostile-input.ts';

/**
 * The world the hostile-input tests (test/hostile-*.test.ts) attack: the real app (Google sign-in configured, so its
 * routes run their handlers too) on a fresh database, its route table as Fastify reports it, three browsers (an
 * anonymous visitor, a signed-in User and a signed-in Admin, each with its CSRF token) and the real ids their
 * requests point at. `restore()` puts it back after a request that changed it; `fingerprint()` is what "nothing was
 * written" is checked against.
 */
export type Identity = 'anonymous' | 'user' | 'admin';
export const IDENTITIES: readonly Identity[] = ['anonymous', 'user', 'admin'];
export interface Route {
  method: string;
  url: string;
  params: string[];
  /** /api/* speaks JSON; every other route takes forms (and JSON, held to the same schema). */
  json: boolean;
}

const PEOPLE = {
  admin: { username: 'Admin', email: 'admin@example.com' },
  user: { username: 'Ursula', email: 'user@example.com' },
} as const;

/**
 * Tables whose rows may change on a refused request: failed sign-ins and codes are counted there on purpose, and the
 * migration bookkeeping is not ours. Every other table of chatbot_schema, including any added later, is fingerprinted.
 */
const WRITTEN_ON_REFUSAL = new Set(['login_throttle']);
/** Columns a read may touch (a session's last use is written at most once a minute by any request). */
const VOLATILE_COLUMNS = ['dtlast_seen'];

export interface HostileWorld {
  app: FastifyInstance;
  database: OpenedDatabase;
  config: Config;
  llm: FakeLlm;
  /** The loopback OpenID provider standing in for Google (its claims are input too). */
  provider: TestProvider;
  routes: Route[];
  /** Lines the app logged at level error or above, oldest first. */
  errorLog: string[];
  clients: Record<Identity, TestClient>;
  ids: { admin: number; user: number; model: number; adminChat: number; userChat: number; userResponse: number; userMessage: number };
  /** The body limits the app was built with (forms, everything else). */
  limits: { form: number; body: number };
  /** The real URL of `route` for `identity`: its own chat, the User as the object of admin routes. */
  realUrl(route: Route, identity: Identity, override?: Array<string | undefined>): string;
  restore(): Promise<void>;
  fingerprint(): Promise<string>;
  /** Fails when the database holds something half-done (see invariantsQuery). */
  assertWhole(what: string): Promise<void>;
  /** The app still answers: /readyz 200, the Admin's chat page and the User's chat JSON. */
  assertHealthy(): Promise<void>;
  close(): Promise<void>;
}

export async function startHostileWorld(env: Record<string, string> = {}): Promise<HostileWorld> {
  const llm = await startFakeLlm();
  const provider = new TestProvider();
  await provider.start();
  const database = await openTestDatabase();
  const config = testConfig({ ...provider.env(), ...env });
  const routes: Route[] = [];
  // Errors the app logs (an unexpected exception becomes a logged 500, but one in a hook after the answer is sent
  // only a log line): the Judge fails a case that logged one.
  const errorLog: string[] = [];
  const app = await buildApp({
    config,
    db: database.db,
    logger: { level: 'error', stream: { write: (line: string) => void errorLog.push(line) } },
    onRoute: (route) => {
      for (const method of [route.method].flat()) {
        // HEAD mirrors GET; static files take no input but their path, and @fastify/static has tests of its own.
        if (method === 'HEAD' || route.url.startsWith('/static/')) continue;
        routes.push({ method, url: route.url, params: [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1] as string), json: route.url.startsWith('/api/') });
      }
    },
  });
  await app.ready();
  routes.sort((a, b) => `${a.url} ${a.method}`.localeCompare(`${b.url} ${b.method}`));
  const db = database.db;

  const clients: Record<Identity, TestClient> = { anonymous: new TestClient(app), user: new TestClient(app), admin: new TestClient(app) };
  assert.equal((await clients.admin.register(PEOPLE.admin)).statusCode, 303);
  assert.equal((await clients.user.register(PEOPLE.user)).statusCode, 303);
  // A page after sign-in: the token bound to the new session.
  for (const who of ['admin', 'user'] as const) await clients[who].get('/chat');
  const rows = await db.selectFrom('chatbot_schema.app_user').select(['idappuser', 'txemail', 'password']).execute();
  const idOf = (email: string) => rows.find((r) => r.txemail === email)?.idappuser ?? 0;
  const passwordOf = (email: string) => rows.find((r) => r.txemail === email)?.password ?? null;
  const ids = { admin: idOf(PEOPLE.admin.email), user: idOf(PEOPLE.user.email), model: 0, adminChat: 0, userChat: 0, userResponse: 0, userMessage: 0 };

  const tables = (
    await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'chatbot_schema' AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(db)
  ).rows
    .map((r) => r.table_name)
    .filter((t) => !WRITTEN_ON_REFUSAL.has(t) && !t.startsWith('kysely_'));
  const volatile = sql.raw(VOLATILE_COLUMNS.map((c) => ` - '${c}'`).join(''));
  const fingerprintQuery = sql<Record<string, string>>`SELECT ${sql.join(
    tables.map(
      (t) =>
        sql`(SELECT count(*)::text || ':' || coalesce(md5(string_agg((to_jsonb(x)${volatile})::text, ',' ORDER BY (to_jsonb(x)${volatile})::text)), '')
             FROM ${sql.table(`chatbot_schema.${t}`)} x) AS ${sql.ref(t)}`,
    ),
  )}`;

  async function sessionAlive(client: TestClient): Promise<boolean> {
    const token = client.cookies.get('parley_session');
    if (!token) return false;
    const row = await db
      .selectFrom('chatbot_schema.session')
      .select('is_second_factor_pending')
      .where('idsession', '=', sha256Hex(token))
      .where('dtexpires', '>', new Date())
      .executeTakeFirst();
    return row !== undefined && !row.is_second_factor_pending;
  }

  async function signIn(who: 'user' | 'admin'): Promise<void> {
    const client = clients[who];
    client.cookies.clear();
    // A case may have spent the account's password attempts; this sign-in is ours, not the case's.
    await db.deleteFrom('chatbot_schema.login_throttle').execute();
    const res = await client.login(PEOPLE[who].email, DEFAULT_PASSWORD);
    assert.equal(res.statusCode, 303, `${who} could not sign in again: ${res.statusCode} ${res.body.slice(0, 200)}`);
    await client.get('/chat');
  }

  async function restore(): Promise<void> {
    for (const who of ['admin', 'user'] as const) {
      await db
        .updateTable('chatbot_schema.app_user')
        .set({
          txusername: PEOPLE[who].username,
          txemail: PEOPLE[who].email,
          password: passwordOf(PEOPLE[who].email),
          is_active: true,
          is_2fa_enabled: false,
          totp_secret: null,
          txtotp_pending_secret: null,
        })
        .where('idappuser', '=', ids[who])
        .execute();
    }
    await db.deleteFrom('chatbot_schema.user_role').where('idappuser', 'in', [ids.admin, ids.user]).execute();
    await db
      .insertInto('chatbot_schema.user_role')
      .values([
        { idappuser: ids.admin, idrole: 1 },
        { idappuser: ids.admin, idrole: 2 },
        { idappuser: ids.user, idrole: 2 },
      ])
      .execute();
    const model = await db
      .updateTable('chatbot_schema.llm')
      .set({ txbase_url: llm.baseUrl, txmodel: 'fake-echo', is_enabled: true, txapi_key_enc: null })
      .where('idllm', '=', ids.model)
      .returning('idllm')
      .executeTakeFirst();
    if (!model) ids.model = await addModel(database, llm.baseUrl, `Fake echo ${Date.now()}`);
    for (const [key, owner] of [
      ['adminChat', ids.admin],
      ['userChat', ids.user],
    ] as const) {
      const chat = await db
        .selectFrom('chatbot_schema.chat')
        .select('idchat')
        .where('idchat', '=', ids[key])
        .where('idappuser', '=', owner)
        .where('idllm', '=', ids.model)
        .executeTakeFirst();
      if (!chat) {
        ids[key] = await createChat(db, owner, ids.model);
        if (key === 'userChat') ids.userResponse = 0;
      }
    }
    for (const who of ['admin', 'user'] as const) if (!(await sessionAlive(clients[who]))) await signIn(who);
    if (clients.anonymous.cookies.has('parley_session') || !clients.anonymous.csrf) {
      clients.anonymous.cookies.clear();
      await clients.anonymous.get('/login');
    }
    const answer = await db
      .selectFrom('chatbot_schema.response')
      .select('idresponse')
      .where('idresponse', '=', ids.userResponse)
      .where('idmessage', '=', ids.userMessage)
      .where('idchat', '=', ids.userChat)
      .executeTakeFirst();
    if (!answer) {
      const res = await clients.user.postJson(`/api/chats/${ids.userChat}/messages`, { content: 'hello' });
      assert.match(String(res.headers['content-type']), /event-stream/, `could not start an answer: ${res.statusCode} ${res.body.slice(0, 300)}`);
      const start = parseSse(res.body).find((e) => e.event === 'start');
      assert.ok(start, `could not create an answer to point at: ${res.statusCode} ${res.body.slice(0, 200)}`);
      ids.userResponse = start.data.idresponse as number;
      ids.userMessage = start.data.idmessage as number; // what an edit (…/messages/:idmessage/edit) names
    }
  }

  function realUrl(route: Route, identity: Identity, override: Array<string | undefined> = []): string {
    let url = route.url;
    route.params.forEach((name, i) => {
      let real: number | string;
      if (name === 'idresponse') real = ids.userResponse;
      else if (name === 'idmessage') real = ids.userMessage;
      else if (name === 'token') real = 'x'.repeat(43);
      else if (route.url.includes('/chats/') || route.url.startsWith('/chat/')) real = identity === 'admin' ? ids.adminChat : ids.userChat;
      else if (route.url.includes('/models/')) real = ids.model;
      else real = ids.user;
      url = url.replace(`:${name}`, override[i] ?? String(real));
    });
    return url;
  }

  /**
   * What no request may leave half-done, whatever it was answered: an account without its User role, a prompt
   * without an answer row, an answer filed under another chat than its prompt, an answer still pending or
   * streaming once its request has been answered, an identity or session of no account.
   */
  const invariantsQuery = sql<{ problem: string; n: string }>`
    SELECT 'an account without the User role' AS problem, count(*)::text AS n FROM chatbot_schema.app_user u
      WHERE NOT EXISTS (SELECT 1 FROM chatbot_schema.user_role r WHERE r.idappuser = u.idappuser AND r.idrole = 2)
    UNION ALL SELECT 'a prompt without an answer', count(*)::text FROM chatbot_schema.message m
      WHERE NOT EXISTS (SELECT 1 FROM chatbot_schema.response r WHERE r.idmessage = m.idmessage)
    UNION ALL SELECT 'an answer in another chat than its prompt', count(*)::text FROM chatbot_schema.response r
      JOIN chatbot_schema.message m ON m.idmessage = r.idmessage WHERE m.idchat <> r.idchat
    UNION ALL SELECT 'an answer still pending or streaming', count(*)::text FROM chatbot_schema.response
      WHERE txstatus IN ('pending', 'streaming')
    UNION ALL SELECT 'an identity of no account', count(*)::text FROM chatbot_schema.oauth_identity i
      WHERE NOT EXISTS (SELECT 1 FROM chatbot_schema.app_user u WHERE u.idappuser = i.idappuser)`;
  async function assertWhole(what: string): Promise<void> {
    const broken = (await invariantsQuery.execute(db)).rows.filter((r) => r.n !== '0');
    assert.deepEqual(broken, [], `${what}: left the database half-done`);
  }

  async function fingerprint(): Promise<string> {
    const row = (await fingerprintQuery.execute(db)).rows[0] ?? {};
    return tables.map((t) => `${t}=${row[t]}`).join(' ');
  }

  async function assertHealthy(): Promise<void> {
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, `/readyz: ${ready.statusCode} ${ready.body}`);
    await restore();
    const page = await clients.admin.get('/chat');
    assert.equal(page.statusCode, 200, `the Admin's chat page: ${page.statusCode}`);
    const chat = await clients.user.get(`/api/chats/${ids.userChat}`);
    assert.equal(chat.statusCode, 200, `the User's chat: ${chat.statusCode} ${chat.body.slice(0, 200)}`);
  }

  await restore();
  return {
    app,
    database,
    config,
    llm,
    provider,
    routes,
    errorLog,
    clients,
    ids,
    // The form limit is src/app.ts's formbody option; the other comes from Fastify itself.
    limits: { form: 64 * 1024, body: app.initialConfig.bodyLimit ?? 1024 * 1024 },
    realUrl,
    restore,
    fingerprint,
    assertWhole,
    assertHealthy,
    close: async () => {
      await app.close();
      await database.close();
      await llm.close();
      await provider.stop();
    },
  };
}

/** Whether the answer replaced or cleared the browser's session (sign-in, sign-out): the world needs restoring. */
export function sessionChanged(res: LightMyRequestResponse): boolean {
  return (res.cookies as Array<{ name: string }>).some((c) => c.name === 'parley_session');
}

/** `text` as a one-line excerpt for failure messages (bodies can be megabytes). */
export function excerpt(text: string | Buffer | undefined, max = 200): string {
  const s = typeof text === 'string' ? text : text === undefined ? '' : text.subarray(0, max * 4).toString('latin1');
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length})` : s);
}

/** Stand-ins in known bodies, filled in per request: the caller's CSRF token, and an address nobody has yet (so a
 * registration gets as far as the INSERT, not to "already taken"). */
export const CSRF = 'CSRF-TOKEN-OF-THE-CALLER';
export const NEW_EMAIL = 'new-address@example.com';
let fresh = 0;
export function fillIn(pairs: Pair[], client: TestClient): Pair[] {
  return pairs.map(([k, v]) => [k, v === CSRF ? client.csrf : v === NEW_EMAIL ? `new${++fresh}-${Date.now()}@example.com` : v]);
}

/** Bodies some route accepts as they are; each route starts from those it accepted (see acceptedBodies). */
export function knownBodies(world: HostileWorld): Pair[][] {
  const fields: Pair[][] = [
    [],
    [['content', 'hello']],
    [['title', 'A title']],
    [['llm', world.ids.model]],
    [
      ['name', 'Model B'],
      ['baseUrl', world.llm.baseUrl],
      ['model', 'fake-echo'],
      ['apiKey', 'sk-test'],
      ['enabled', 'on'],
    ],
    [
      ['username', 'Nina'],
      ['email', NEW_EMAIL],
      ['password', DEFAULT_PASSWORD],
    ],
    [
      ['email', PEOPLE.user.email],
      ['password', DEFAULT_PASSWORD],
    ],
    [['username', 'Renamed']],
    [
      ['current_password', DEFAULT_PASSWORD],
      ['new_password', DEFAULT_PASSWORD],
    ],
    [
      ['action', 'sign-out-everywhere'],
      ['ids', String(world.ids.user)],
    ],
    [['otp_code', '123456']],
  ];
  return fields.map((pairs): Pair[] => [['_csrf', CSRF], ...pairs]);
}

/** The caller a route is for: admin pages the Admin, sign-in pages a visitor, the rest the User. */
export function mainIdentity(route: Route): Identity {
  return route.url.startsWith('/admin') ? 'admin' : /^\/(login|register|reset-password)/.test(route.url) ? 'anonymous' : 'user';
}

/**
 * Judges answers: never a 5xx; a refused one (4xx that left the session alone) changed no row. After an accepted
 * one the world is restored and fingerprinted again. Counts what it saw, for the report line.
 */
export class Judge {
  readonly world: HostileWorld;
  before = '';
  /** Set while a case runs: a case that failed half-way (fast-check then shrinks) leaves the world to put back. */
  dirty = false;
  generated = 0;
  refused = 0;
  constructor(world: HostileWorld) {
    this.world = world;
  }
  async start(): Promise<void> {
    assert.deepEqual(this.world.errorLog.splice(0), [], 'the app logged an error');
    this.before = await this.world.fingerprint();
    this.dirty = false;
  }
  /** Call first in every case: restores the world a failed case left behind, then marks the case running. */
  async begin(): Promise<void> {
    if (this.dirty) {
      await this.world.restore();
      await this.start();
    }
    this.dirty = true;
  }
  async judge(what: string, res: LightMyRequestResponse): Promise<void> {
    this.generated++;
    if (process.env.HOSTILE_TRACE) console.log(res.statusCode, what);
    assert.ok(res.statusCode < 500, `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`);
    const logged = this.world.errorLog.splice(0);
    assert.deepEqual(logged, [], `${what} → ${res.statusCode}, but the app logged an error`);
    await this.world.assertWhole(`${what} → ${res.statusCode}`);
    if (res.statusCode >= 400 && !sessionChanged(res)) {
      this.refused++;
      assert.equal(await this.world.fingerprint(), this.before, `${what} → ${res.statusCode}, refused, but rows changed`);
    } else {
      await this.world.restore();
      this.before = await this.world.fingerprint();
    }
    this.dirty = false;
  }
  /** The known bodies `route` accepts from its main caller as they are (real ids, the native encoding). */
  async acceptedBodies(route: Route): Promise<Pair[][]> {
    const known = knownBodies(this.world);
    const found: Pair[][] = [];
    const identity = mainIdentity(route);
    for (const pairs of known) {
      const client = this.world.clients[identity];
      const { contentType, payload } = encodeBody(fillIn(pairs, client), route.json ? 'json' : 'form', '');
      const res = await this.world.app.inject({
        method: route.method as 'POST',
        url: this.world.realUrl(route, identity),
        headers: { cookie: client.cookieHeader(), 'x-csrf-token': client.csrf, 'content-type': contentType as string },
        payload,
      });
      if (res.statusCode < 400) found.push(pairs);
      await this.judge(`${route.method} ${route.url} with a known body`, res);
    }
    return found.length > 0 ? found : known;
  }
}
