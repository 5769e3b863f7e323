// test-runs-once: hostile input at the HTTP boundary (never a 5xx, a refusal changes no row); both runs are the same PostgreSQL engine, and the route tests check each query on both (scripts/test.ts runsOnce).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import { createChat } from '../src/chat/chat-queries.ts';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { testConfig } from './app.ts';
import { addModel, parseSse } from './chat-fixtures.ts';
import { DEFAULT_PASSWORD, TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';

/**
 * Whatever arrives, no route answers 5xx. For every route the app registers (found through `onRoute`, so a new
 * route is covered the day it is added), fast-check sends random input: strings with NUL, lone surrogates and
 * broken percent-encoding, huge numbers, arrays, objects and null where strings belong, missing and extra fields,
 * the wrong content type, random query strings, and `:params` that are real ids of existing objects (so handlers run
 * deep) or anything else. Callers are a signed-in Admin (admin routes are reached) or an anonymous visitor (the
 * sign-in forms are), each with a valid CSRF token, from a random IP (so the sign-in throttle does not end the test
 * early). fast-check picks a new seed each run (so every CI run tries other inputs) and prints it on failure;
 * reproduce with PROPERTY_SEED=<seed> PROPERTY_RUNS=<n>. test/hostile-*.test.ts go further (raw bytes, megabytes,
 * headers and cookies, a User as well, rows checked unchanged, round trips).
 */
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);
const ADMIN = { username: 'Admin', email: 'admin@example.com' };

const llm = await startFakeLlm();
const database = await openTestDatabase();
const config = testConfig();
const routes: Array<{ method: string; url: string }> = [];
const app = await buildApp({
  config,
  db: database.db,
  onRoute: (route) => {
    for (const method of [route.method].flat()) {
      // HEAD mirrors GET; static files take no input but their path, and @fastify/static has tests of its own.
      if (method !== 'HEAD' && !route.url.startsWith('/static/')) routes.push({ method, url: route.url });
    }
  },
});
await app.ready();
after(async () => {
  await app.close();
  await database.close();
  await llm.close();
});
const db = database.db;

// ── the world the real ids point at, put back before every case (a case may delete, disable or sign out) ──
const admin = new TestClient(app);
await admin.register(ADMIN);
await admin.get('/chat'); // a page: the session's CSRF token
const adminRow = await db.selectFrom('chatbot_schema.app_user').select(['idappuser', 'password']).where('txemail', '=', ADMIN.email).executeTakeFirstOrThrow();
const ids = { user: adminRow.idappuser, model: 0, chat: 0, response: 0 };

async function restoreWorld(): Promise<void> {
  await db
    .updateTable('chatbot_schema.app_user')
    .set({ is_active: true, is_2fa_enabled: false, password: adminRow.password })
    .where('idappuser', '=', ids.user)
    .execute();
  await db
    .insertInto('chatbot_schema.user_role')
    .values({ idappuser: ids.user, idrole: 1 })
    .onConflict((oc) => oc.doNothing())
    .execute();
  const model = await db
    .updateTable('chatbot_schema.llm')
    .set({ txbase_url: llm.baseUrl, txmodel: 'fake-echo', is_enabled: true, txapi_key_enc: null })
    .where('idllm', '=', ids.model)
    .returning('idllm')
    .executeTakeFirst();
  if (!model) ids.model = await addModel(database, llm.baseUrl, `Fake echo ${Date.now()}`);
  const chat = await db.selectFrom('chatbot_schema.chat').select('idchat').where('idchat', '=', ids.chat).where('idllm', '=', ids.model).executeTakeFirst();
  if (!chat) {
    ids.chat = await createChat(db, ids.user, ids.model);
    ids.response = 0;
  }
  if (ids.response === 0) {
    const res = await admin.postJson(`/api/chats/${ids.chat}/messages`, { content: 'hello' });
    const start = parseSse(res.body).find((e) => e.event === 'start');
    assert.ok(start, `could not create an answer to point at: ${res.statusCode} ${res.body.slice(0, 200)}`);
    ids.response = start.data.idresponse as number;
  }
}

async function signInAdminAgain(): Promise<void> {
  admin.cookies.clear();
  const res = await admin.login(ADMIN.email, DEFAULT_PASSWORD);
  assert.equal(res.statusCode, 303, `the Admin could not sign in again: ${res.body.slice(0, 200)}`);
  await admin.get('/chat');
}

async function anonymousVisitor(): Promise<TestClient> {
  const visitor = new TestClient(app);
  await visitor.get('/login');
  return visitor;
}
let anonymous = await anonymousVisitor();
await restoreWorld();
// Real ids as plausible values in bodies (`{"llm": <model id>}` reaches createChat).
const firstIds = { ...ids };

/** The real id a `:param` of this route stands for. */
function realId(route: string, param: string): number {
  if (param === 'idresponse') return ids.response;
  if (route.includes('/chats/') || route.startsWith('/chat/')) return ids.chat;
  if (route.includes('/models/')) return ids.model;
  return ids.user;
}

// ── arbitraries ──
const REAL = Symbol('real id');
const plausible = [
  ADMIN.email,
  'new@example.com',
  DEFAULT_PASSWORD,
  'A title',
  'Nina',
  llm.baseUrl,
  'http://127.0.0.1:1/v1',
  'fake-echo',
  'on',
  '1',
  '123456',
  '/chat',
];
/** What PostgreSQL or our parsers must refuse cleanly: NUL, lone surrogates, U+FFFD, percent signs. */
const poison = ['\u0000', '\ud800', '\udfff', '\ufffd', '%00', '%'];
const nasty = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...plausible), fc.constantFrom(...poison), fc.nat())
      .map(([s, p, at]) => s.slice(0, at % (s.length + 1)) + p + s.slice(at % (s.length + 1))),
  },
  { weight: 2, arbitrary: fc.constantFrom(...plausible) },
  { weight: 2, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('a', ' ', '😀', '&', '=', '+', '\n', '<', '"', '\\', '[', '{', ...poison) }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(config.MAX_PROMPT_CHARS + 1), 'y'.repeat(70_000)) },
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 31 - 1, 2 ** 53 + 1, 1e308, -1e308, 1.5, firstIds.model, firstIds.chat, firstIds.response),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: nasty },
    { weight: 2, arbitrary: number },
    { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 }) },
  ),
}));
const fieldNames = [
  'content',
  'title',
  'llm',
  'username',
  'email',
  'password',
  'name',
  'baseUrl',
  'model',
  'apiKey',
  'enabled',
  'removeApiKey',
  'code',
  'next',
  '_csrf',
  '__proto__',
  'constructor',
];
const fieldName = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...fieldNames) }, { weight: 1, arbitrary: fc.string() });

/**
 * Bodies the app's forms and JSON routes accept. Random dictionaries rarely get past a strict schema, so most cases
 * start from a body the route accepted before the tests (found by trying each of these on it, see `acceptedBodies`)
 * and break it a little: one value replaced by anything, a field dropped, one added. A new route is still covered by
 * the random bodies; adding its valid body here makes its cases reach deeper.
 */
const knownBodies: Array<Record<string, unknown>> = [
  {},
  { content: 'hello' },
  { title: 'A title' },
  { llm: firstIds.model },
  { name: 'Model B', baseUrl: llm.baseUrl, model: 'fake-echo', apiKey: 'sk-test', enabled: 'on' },
  { username: 'Nina', email: 'nina@example.com', password: DEFAULT_PASSWORD },
  { email: ADMIN.email, password: DEFAULT_PASSWORD },
  { code: '123456' },
];
const mutation = fc.record({ op: fc.constantFrom('replace', 'replace', 'replace', 'drop', 'add'), at: fc.nat(), key: fieldName, value });
function mutated(starts: Array<Record<string, unknown>>) {
  return fc.record({ start: fc.constantFrom(...starts), mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }) }).map(({ start, mutations }) => {
    const out: Record<string, unknown> = { ...start };
    for (const m of mutations) {
      const keys = Object.keys(out);
      const at = keys.length > 0 ? (keys[m.at % keys.length] as string) : undefined;
      if (m.op === 'replace' && at !== undefined) out[at] = m.value;
      else if (m.op === 'drop' && at !== undefined) delete out[at];
      // defineProperty: a key named __proto__ becomes a field, as it would in JSON.parse.
      else Object.defineProperty(out, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
    }
    return out;
  });
}
const bodyFor = (starts: Array<Record<string, unknown>>) =>
  fc.oneof(
    { weight: 6, arbitrary: mutated(starts) },
    { weight: 1, arbitrary: mutated(knownBodies) },
    { weight: 1, arbitrary: fc.dictionary(fieldName, value, { maxKeys: 5 }) },
    { weight: 1, arbitrary: value },
  );
/** Broken on purpose: invalid JSON, deep nesting, percent-encoding that decodes to nothing valid. */
const rawBody = fc.constantFrom('{"content": ', '[', `${'['.repeat(40_000)}${']'.repeat(40_000)}`, '%FF%FE', 'a=%ED%A0%80', 'a=%', '\u0000', 'a=1&a=2&a=3', '');
const param = fc.oneof(
  { weight: 8, arbitrary: fc.constant<typeof REAL>(REAL) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 31 - 1 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('0', '-1', '2147483648', '99999999999999999999', '1e3', '0x10', '%EF%BC%91', '%00', '%ED%A0%80', '..', '%2F') },
  { weight: 1, arbitrary: nasty.map(percentEncode) },
);
// Keys from a small pool, so a repeated key (`?next=a&next=b`, an array to the handler) is common.
const queryPair = fc.tuple(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom('next', 'next', 'id') }, { weight: 1, arbitrary: fc.string().map(percentEncode) }),
  fc.oneof(nasty.map(percentEncode), fc.constantFrom('%00', '%ED%A0%80', '%FF', '%', '%E0%A4', '%2Fchat', 'https%3A%2F%2Fevil.example')),
);
const query = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Array<[string, string]>>([]) },
  { weight: 1, arbitrary: fc.array(queryPair, { minLength: 1, maxLength: 4 }) },
);
const caseFor = (paramCount: number, starts: Array<Record<string, unknown>> | null) =>
  fc.record({
    visitor: fc.oneof({ weight: 2, arbitrary: fc.constant('admin') }, { weight: 1, arbitrary: fc.constant('anonymous') }),
    params: fc.array(param, { minLength: paramCount, maxLength: paramCount }),
    query,
    body: starts ? bodyFor(starts) : fc.constant(undefined),
    encoding: starts
      ? fc.oneof({ weight: 8, arbitrary: fc.constant('native') }, { weight: 1, arbitrary: fc.constantFrom('swapped', 'raw', 'none') })
      : fc.constant('none'),
    raw: rawBody,
    unencodedForm: fc.boolean(),
    ip: fc.ipV4(),
  });
type Case = ReturnType<typeof caseFor> extends fc.Arbitrary<infer T> ? T : never;

/** UTF-8 bytes as %XX: works for lone surrogates too (encodeURIComponent throws on them; Buffer writes U+FFFD). */
function percentEncode(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

function formEncode(input: unknown, unencoded: boolean): string {
  const enc = unencoded ? (s: string) => s : percentEncode;
  const text = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return enc(text(input));
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(input)) for (const one of Array.isArray(v) ? v : [v]) pairs.push(`${enc(k)}=${enc(text(one))}`);
  return pairs.join('&');
}

function request(method: string, route: string, c: Case, visitor: TestClient) {
  const names = [...route.matchAll(/:(\w+)/g)].map((m) => m[1] as string);
  let url = route;
  names.forEach((name, i) => {
    const p = c.params[i];
    url = url.replace(`:${name}`, p === REAL ? String(realId(route, name)) : (p as string));
  });
  if (c.query.length > 0) url += `?${c.query.map(([k, v]) => `${k}=${v}`).join('&')}`;
  const json = route.startsWith('/api/') !== (c.encoding === 'swapped');
  const headers: Record<string, string> = { cookie: visitor.cookieHeader(), 'x-csrf-token': visitor.csrf };
  let payload: string | undefined;
  if (c.encoding === 'raw') {
    headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    payload = c.raw;
  } else if (c.encoding !== 'none') {
    headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    payload = json ? (JSON.stringify(c.body) ?? 'null') : formEncode(c.body, c.unencodedForm);
  }
  return { method: method as 'GET', url, headers, payload, remoteAddress: c.ip };
}

const sessionChanged = (res: LightMyRequestResponse) => (res.cookies as Array<{ name: string }>).some((x) => x.name === 'parley_session');

/** One case: the world put back, the request sent, and a browser whose session changed (sign-out, sign-in) restored. */
async function send(method: string, route: string, c: Case): Promise<{ req: ReturnType<typeof request>; res: LightMyRequestResponse }> {
  await restoreWorld();
  const visitor = c.visitor === 'admin' ? admin : anonymous;
  const req = request(method, route, c, visitor);
  const res = await app.inject(req);
  if (sessionChanged(res)) {
    if (visitor === admin) await signInAdminAgain();
    else anonymous = await anonymousVisitor();
  }
  return { req, res };
}

/** The known bodies this route accepts as they are (a 2xx or 3xx from the Admin, real ids, no query). */
async function acceptedBodies(method: string, route: string, paramCount: number): Promise<Array<Record<string, unknown>>> {
  const accepted: Array<Record<string, unknown>> = [];
  for (const body of knownBodies) {
    const plain = {
      visitor: 'admin',
      params: Array(paramCount).fill(REAL),
      query: [],
      body,
      encoding: 'native',
      raw: '',
      unencodedForm: false,
      ip: '10.0.0.1',
    };
    const { res } = await send(method, route, plain as Case);
    if (res.statusCode < 400) accepted.push(body);
  }
  return accepted.length > 0 ? accepted : knownBodies;
}

for (const { method, url: route } of routes.sort((a, b) => `${a.url} ${a.method}`.localeCompare(`${b.url} ${b.method}`))) {
  const paramCount = [...route.matchAll(/:(\w+)/g)].length;
  test(`${method} ${route}: random input never gets a 5xx`, async () => {
    const starts = method === 'GET' ? null : await acceptedBodies(method, route, paramCount);
    await fc.assert(
      fc.asyncProperty(caseFor(paramCount, starts), async (c) => {
        const { req, res } = await send(method, route, c);
        if (process.env.PROPERTY_TRACE) console.log(c.visitor, res.statusCode, req.method, req.url.slice(0, 100), String(req.payload ?? '').slice(0, 100));
        assert.ok(res.statusCode < 500, `${req.method} ${req.url.slice(0, 300)} as ${c.visitor} → ${res.statusCode} ${res.body.slice(0, 300)}`);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
  });
}

test('the routes were found (the property tests above ran against the real route table)', () => {
  assert.ok(routes.some((r) => r.method === 'POST' && r.url === '/api/chats/:id/messages'));
  assert.ok(routes.some((r) => r.method === 'POST' && r.url === '/admin/models/:id'));
  assert.ok(routes.length >= 20, `only ${routes.length} routes`);
});
