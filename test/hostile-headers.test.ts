// test-runs-once: hostile input at the HTTP boundary (never a 5xx, a refusal changes no row); both runs are the same PostgreSQL engine, and the route tests check each query on both (scripts/test.ts runsOnce).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { SecretBox } from '../src/crypto/secret-box.ts';
import { TEST_SECRET } from './app.ts';
import { encodeBody, headerText, type Pair, percentEncode } from './hostile-input.ts';
import { excerpt, fillIn, IDENTITIES, type Identity, Judge, mainIdentity, type Route, startHostileWorld } from './hostile-world.ts';

/**
 * Hostile headers and cookies on every route (GETs too; found through `onRoute`), from an anonymous visitor, a
 * signed-in User and a signed-in Admin. Bodies are ones the route accepts (so what runs is the handler, with the
 * headers around it): huge and malformed Cookie headers, session tokens of the right shape that are nobody's, of the
 * wrong shape, repeated, or another browser's; flash cookies unsigned, signed with another secret, or signed by us
 * around nonsense; Google state cookies sealed for another purpose or not at all; garbage CSRF tokens (another
 * browser's, with a byte added, 100 KB long); odd Accept, Host, Origin, Sec-Fetch-Site, User-Agent and the
 * X-Forwarded-* headers (TRUST_PROXY is on, so they reach req.ip and req.protocol, and the session row's address);
 * repeated query parameters. Header values are what Node's HTTP parser passes (Latin-1 without controls), so each
 * failure is one a real client can cause; a huge header is sent anyway (a proxy or Node's 16 KB limit usually stops
 * it first, but the app must not rely on that).
 * Properties: never a 5xx; a refusal (4xx) changed no row; the app healthy after each route. fast-check picks the
 * seed and prints it on failure: HOSTILE_SEED=<seed> HOSTILE_RUNS=<n> reproduce it, HOSTILE_TRACE=1 lists the cases.
 */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 16);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);

const world = await startHostileWorld({ TRUST_PROXY: 'true' });
after(() => world.close());
const { app, clients } = world;
const judge = new Judge(world);
await judge.start();

const base64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 43, maxLength: 43 });
const latin1 = headerText(60);
const sealedAs = (purpose: string) => fc.oneof(latin1, fc.json()).map((text) => new SecretBox(TEST_SECRET, purpose).encrypt(text));
const hugeSizes = fc.constantFrom(4096, 8190, 16 * 1024 + 1, 64 * 1024, 1024 * 1024);

/** The `state` the Google callback is sent (below), so a flow cookie of that name is the one it opens. */
const STATE = 'S'.repeat(43);

/**
 * The Cookie header as a template: OWN is this browser's own cookies, OTHER another signed-in browser's (data, not
 * functions, so a counterexample prints what was sent).
 */
const OWN = '{own}';
const OTHER = '{other}';
const cookieHeader = fc.oneof(
  { weight: 3, arbitrary: fc.constant(OWN) },
  { weight: 1, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.array(fc.tuple(latin1, latin1), { minLength: 1, maxLength: 4 }).map((pairs) => [OWN, ...pairs.map(([k, v]) => `${k}=${v}`)].join('; ')),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(hugeSizes, fc.constantFrom('parley_session', 'parley_csrf', 'parley_flash', 'x'))
      .map(([n, name]) => `${OWN}; ${name}=${'a'.repeat(n)}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        ';',
        '=',
        '==;;==',
        ' ; ; ',
        'parley_session',
        'parley_session=',
        'parley_session="',
        'parley_session=""',
        'parley_session=%E0%A4%A',
        'parley_session=%00',
        'parley_session=%ED%A0%80',
        'parley_session=a=b=c',
        'parley_session=\u00ff\u00fe',
        'parley_csrf=%',
        'parley_flash=s:',
        '__proto__=x',
        'constructor=x',
        'hasOwnProperty=1',
      )
      .map((bad) => `${bad}; ${OWN}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom('parley_session', 'parley_csrf'),
        fc.oneof(
          base64url,
          base64url.map((s) => s.slice(1)),
          base64url.map((s) => `${s}x`),
          latin1,
        ),
        fc.boolean(),
      )
      .map(([name, value, first]) => (first ? `${name}=${value}; ${OWN}` : `${OWN}; ${name}=${value}`)),
  },
  { weight: 2, arbitrary: fc.constantFrom(`${OTHER}; ${OWN}`, `${OWN}; ${OTHER}`) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        latin1,
        fc.json().map((j) => `s:${j}`),
        fc.json().map((j) => app.signCookie(j)),
        latin1.map((text) => app.signCookie(text)),
        fc.constant(app.signCookie(JSON.stringify(Array(1000).fill({ kind: 'danger', text: 'x'.repeat(500) })))),
        fc.constant(app.signCookie(JSON.stringify([{ kind: 'danger', text: '<script>alert(1)</script>' }]))),
        fc.constant(`${JSON.stringify([{ kind: 'success', text: 'forged' }])}.AAAA`),
      )
      .map((flash) => `${OWN}; parley_flash=${encodeURIComponent(flash)}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('parley_google_link', 'parley_oidc_'), fc.oneof(latin1, sealedAs('google-link'), sealedAs('google-flow'), sealedAs('csrf')))
      .map(([name, sealed]) => `${OWN}; ${name === 'parley_oidc_' ? `${name}${STATE}` : name}=${sealed}`),
  },
);

/** The x-csrf-token header, a template like the cookies (null: none sent). */
const csrfToken = fc.oneof(
  { weight: 4, arbitrary: fc.constant<string | null>(OWN) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(OTHER) },
  { weight: 1, arbitrary: latin1 },
  { weight: 1, arbitrary: fc.constantFrom('x', ' ', '\t', '\u00ff').map((s) => `${OWN}${s}`) },
  { weight: 1, arbitrary: fc.constant(OWN.repeat(2500)) },
);
const fill = (template: string, own: string, other: string) => template.replaceAll(OWN, own).replaceAll(OTHER, other);

const QUERY_KEYS = ['next', 'q', 'page', 'status', 'role', 'twofa', 'sort', 'range', 'from', 'to', 'action', 'actor', 'state', 'code', 'error', 'id', 'format'];
const queryValue = fc.oneof(
  fc.constantFrom(
    '1',
    '-1',
    '0',
    '99999999999999999999',
    '%00',
    '%ED%A0%80',
    '%FF',
    '%',
    '%2F%2Fevil.example',
    'https%3A%2F%2Fevil.example',
    STATE,
    'csv',
    'admin',
    'off',
  ),
  latin1.map(percentEncode),
  // Long, but within what Node lets through (a request line and headers of 16 KB in all).
  fc.constantFrom('a'.repeat(8000), '%F0%9F%98%80'.repeat(600)),
);
const query = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Array<[string, string]>>([]) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...QUERY_KEYS), fc.array(queryValue, { minLength: 2, maxLength: 3 }))
      .map(([k, vs]) => vs.map((v): [string, string] => [k, v])),
  },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValue), { minLength: 1, maxLength: 4 }) },
);

/** Each header is sent in a quarter of the cases, so most reach the handler past the origin checks with a few odd ones. */
const maybe = (arb: fc.Arbitrary<string>) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const otherHeaders = fc.record({
  accept: maybe(
    fc.oneof(
      fc.constantFrom('application/json', 'text/html', '*/*', 'application/json, text/html', 'image/png', ''),
      latin1,
      hugeSizes.map((n) => 'a/b,'.repeat(n / 4)),
    ),
  ),
  host: maybe(fc.oneof(fc.constantFrom('evil.example', 'localhost:99999', '[::1', ':', '[]:x', '', 'a'.repeat(5000), '127.0.0.1:5000'), latin1)),
  origin: maybe(fc.oneof(fc.constantFrom('null', 'http://localhost:5000', 'http://evil.example', 'http://', 'file://'), latin1)),
  'sec-fetch-site': maybe(fc.oneof(fc.constantFrom('cross-site', 'same-origin', 'none', 'same-site'), latin1)),
  'user-agent': maybe(
    fc.oneof(
      latin1,
      hugeSizes.map((n) => 'M'.repeat(n)),
    ),
  ),
  'x-forwarded-for': maybe(fc.oneof(fc.constantFrom('', ',', '::1', '999.1.1.1', '1.2.3.4, 5.6.7.8', 'unknown', '[::1]:80'), latin1)),
  'x-forwarded-proto': maybe(fc.oneof(fc.constantFrom('https', 'http', 'gopher', 'https, http', ''), latin1)),
  'x-forwarded-host': maybe(fc.oneof(fc.constantFrom('evil.example', '', 'a:b:c'), latin1)),
  'accept-language': maybe(latin1),
  'if-none-match': maybe(latin1),
  range: maybe(fc.constantFrom('bytes=0-0', 'bytes=-1', 'bytes=9999999999-', 'lines=1-2', 'bytes=0-1,0-1,0-1')),
});

/** Mostly the caller the route is for, sometimes the others. */
const identityFor = (route: Route) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(mainIdentity(route)) }, { weight: 2, arbitrary: fc.constantFrom<Identity>(...IDENTITIES) });

const caseFor = (route: Route, starts: Pair[][]) =>
  fc.record({
    identity: identityFor(route),
    cookies: cookieHeader,
    csrf: csrfToken,
    headers: otherHeaders,
    query,
    body: fc.constantFrom(...starts),
    ip: fc.ipV4(),
  });
type Case = ReturnType<typeof caseFor> extends fc.Arbitrary<infer T> ? T : never;

function request(route: Route, c: Case) {
  const client = clients[c.identity];
  const other = clients[c.identity === 'admin' ? 'user' : 'admin'];
  const headers: Record<string, string> = { cookie: fill(c.cookies, client.cookieHeader(), other.cookieHeader()) };
  if (c.csrf !== null) headers['x-csrf-token'] = fill(c.csrf, client.csrf, other.csrf);
  for (const [name, value] of Object.entries(c.headers)) if (value !== undefined) headers[name] = value;
  let url = world.realUrl(route, c.identity);
  // The Google callback opens the flow cookie its `state` names: send the one the cookies above may carry.
  const pairs = route.url === '/login/google/authorized' ? [['state', STATE], ['code', 'x'], ...c.query] : c.query;
  if (pairs.length > 0) url += `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`;
  let payload: Buffer | undefined;
  if (route.method !== 'GET') {
    const encoded = encodeBody(fillIn(c.body, client), route.json ? 'json' : 'form', '');
    headers['content-type'] = encoded.contentType as string;
    payload = encoded.payload;
  }
  return { method: route.method as 'GET', url, headers, payload, remoteAddress: c.ip };
}

for (const route of world.routes) {
  test(`${route.method} ${route.url}: hostile headers and cookies never get a 5xx, and a refusal writes nothing`, async () => {
    const starts = route.method === 'GET' ? [[]] : await judge.acceptedBodies(route);
    await fc.assert(
      fc.asyncProperty(caseFor(route, starts), async (c) => {
        await judge.begin();
        const req = request(route, c);
        const res = await app.inject(req);
        const shown = Object.entries(req.headers).map(([k, v]) => `${k}: ${excerpt(v, 80)}`);
        await judge.judge(`${req.method} ${excerpt(req.url, 150)} as ${c.identity} with ${shown.join(', ')}`, res);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    await world.assertHealthy();
    await judge.start();
  });
}

test('the routes came from the app (a new route is covered without a line here)', () => {
  const names = world.routes.map((r) => `${r.method} ${r.url}`);
  for (const expected of ['GET /chat/:id', 'GET /login/google/authorized', 'POST /login', 'GET /admin/audit', 'POST /api/chats/:id/messages']) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
  }
  console.log(`# hostile headers: ${world.routes.length} routes, ${judge.generated} requests (${judge.refused} refused with 4xx, rows checked unchanged)`);
});
