import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { DEFAULT_PASSWORD } from './client.ts';
import { type Encoding, encodeBody, hostileValue, mutatedPairs, oddType, type Pair, sized } from './hostile-input.ts';
import { excerpt, IDENTITIES, type Identity, type Route, sessionChanged, startHostileWorld } from './hostile-world.ts';

/**
 * Hostile bodies to every route that takes one (POST, PATCH, DELETE…, found through `onRoute`, so a new route is
 * covered the day it is added), from an anonymous visitor, a signed-in User and a signed-in Admin, each with a valid
 * CSRF token (in the header or in the body), so the handlers' own parsing runs and not only the guards. Bodies are
 * ones the route accepted, broken a little (see test/hostile-input.ts), or random bytes, or sized on either side of
 * the form and JSON body limits up to several megabytes, in every content type (JSON to a form route, a form to a
 * JSON route, multipart, text/plain, none, odd ones).
 * Properties: never a 5xx; a refused request (4xx) changed no row of any table (a fingerprint of every table but the
 * sign-in throttle's, see hostile-world.ts); after each route's run the app is healthy. fast-check picks the seed
 * and prints it on failure: reproduce with HOSTILE_SEED=<seed> HOSTILE_RUNS=<n> (and HOSTILE_TRACE=1 to see cases).
 */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 24);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);

const world = await startHostileWorld();
after(() => world.close());
const { app, ids, limits, config } = world;

const CSRF = 'CSRF-TOKEN-OF-THE-CALLER';
/** Replaced by an address nobody has yet, so a registration gets as far as the INSERT, not to "already taken". */
const NEW_EMAIL = 'new-address@example.com';
let fresh = 0;
/** Bodies some route accepts as they are; each route starts from those it accepted (see `accepted`). */
const fieldsOnly: Pair[][] = [
  [],
  [['content', 'hello']],
  [['title', 'A title']],
  [['llm', ids.model]],
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
    ['email', 'user@example.com'],
    ['password', DEFAULT_PASSWORD],
  ],
  [['username', 'Renamed']],
  [
    ['current_password', DEFAULT_PASSWORD],
    ['new_password', DEFAULT_PASSWORD],
  ],
  [
    ['action', 'sign-out-everywhere'],
    ['ids', String(ids.user)],
  ],
  [['otp_code', '123456']],
];
const knownBodies = fieldsOnly.map((pairs): Pair[] => [['_csrf', CSRF], ...pairs]);

const bodyRoutes = world.routes.filter((r) => r.method !== 'GET');
const value = hostileValue(config.MAX_PROMPT_CHARS);
const sizes = [limits.form - 1, limits.form, limits.form + 1, limits.body - 1, limits.body, limits.body + 1, 2 * 1024 * 1024, 5 * 1024 * 1024 + 3];

/** Mostly the caller the route is for (so the handler runs), sometimes the others (so the guards are attacked too). */
const mainIdentity = (route: Route): Identity =>
  route.url.startsWith('/admin') ? 'admin' : /^\/(login|register|reset-password)/.test(route.url) ? 'anonymous' : 'user';
function identityFor(route: Route): fc.Arbitrary<Identity> {
  return fc.oneof({ weight: 4, arbitrary: fc.constant(mainIdentity(route)) }, { weight: 1, arbitrary: fc.constantFrom<Identity>(...IDENTITIES) });
}

function caseFor(route: Route, starts: Pair[][]) {
  const native: Encoding = route.json ? 'json' : 'form';
  const encoding = fc.oneof(
    { weight: 6, arbitrary: fc.constant(native) },
    { weight: 2, arbitrary: fc.constant<Encoding>(route.json ? 'form' : 'json') },
    { weight: 1, arbitrary: fc.constantFrom<Encoding>('form-unencoded', 'multipart', 'text-plain', 'none-json', 'none-form', 'odd-type') },
  );
  const shape = fc.oneof(
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('mutated' as const), pairs: mutatedPairs(starts, value), encoding }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('value' as const), value, encoding }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 2048 }), encoding }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('sized' as const),
        size: fc.constantFrom(...sizes),
        field: fc.constantFrom('content', 'title', 'username', 'name', 'password', '_csrf'),
        unit: fc.constantFrom('x', 'é', '😀'),
        random: fc.boolean(),
        json: fc.boolean(),
      }),
    },
  );
  return fc.record({ identity: identityFor(route), csrfInHeader: fc.boolean(), shape, odd: oddType, ip: fc.ipV4() });
}
type Case = ReturnType<typeof caseFor> extends fc.Arbitrary<infer T> ? T : never;

function request(route: Route, c: Case) {
  const client = world.clients[c.identity];
  const withToken = (pairs: Pair[]): Pair[] => pairs.map(([k, v]) => [k, v === CSRF ? client.csrf : v === NEW_EMAIL ? `new${++fresh}@example.com` : v]);
  let contentType: string | undefined;
  let payload: Buffer;
  const s = c.shape;
  if (s.kind === 'mutated') ({ contentType, payload } = encodeBody(withToken(s.pairs), s.encoding, c.odd));
  else if (s.kind === 'value') ({ contentType, payload } = encodeBody(s.value, s.encoding, c.odd));
  else if (s.kind === 'bytes') {
    contentType = encodeBody([], s.encoding, c.odd).contentType;
    payload = Buffer.from(s.bytes);
  } else {
    contentType = s.json ? 'application/json' : 'application/x-www-form-urlencoded';
    payload = sized(s.size, s.field, s.unit, s.random, s.json);
  }
  const headers: Record<string, string> = { cookie: client.cookieHeader() };
  if (c.csrfInHeader) headers['x-csrf-token'] = client.csrf;
  if (contentType !== undefined) headers['content-type'] = contentType;
  return { method: route.method as 'POST', url: world.realUrl(route, c.identity), headers, payload, remoteAddress: c.ip };
}

let generated = 0;
let refused = 0;
let before = await world.fingerprint();

async function send(route: Route, c: Case): Promise<{ req: ReturnType<typeof request>; res: LightMyRequestResponse }> {
  const req = request(route, c);
  const started = performance.now();
  const res = await app.inject(req);
  generated++;
  if (process.env.HOSTILE_TRACE)
    console.log(
      Math.round(performance.now() - started),
      'ms',
      c.identity,
      res.statusCode,
      req.method,
      req.url,
      req.headers['content-type'],
      excerpt(req.payload, 120),
    );
  return { req, res };
}

/** After an accepted request (or one that changed a session), the world is put back and fingerprinted again. */
async function settle(res: LightMyRequestResponse): Promise<void> {
  if (res.statusCode < 400 || sessionChanged(res)) {
    await world.restore();
    before = await world.fingerprint();
  }
}

/** The known bodies this route accepts from its main caller as they are (real ids, the native encoding). */
async function accepted(route: Route): Promise<Pair[][]> {
  const found: Pair[][] = [];
  for (const pairs of knownBodies) {
    const { res } = await send(route, {
      identity: mainIdentity(route),
      csrfInHeader: true,
      shape: { kind: 'mutated', pairs, encoding: route.json ? 'json' : 'form' },
      odd: '',
      ip: '10.0.0.1',
    } as unknown as Case);
    if (res.statusCode < 400) found.push(pairs);
    await settle(res);
  }
  return found.length > 0 ? found : knownBodies;
}

for (const route of bodyRoutes) {
  test(`${route.method} ${route.url}: hostile bodies get a 4xx or are stored whole, never a 5xx`, async () => {
    const starts = await accepted(route);
    await fc.assert(
      fc.asyncProperty(caseFor(route, starts), async (c) => {
        const { req, res } = await send(route, c);
        const what = `${req.method} ${req.url} as ${c.identity} (${req.headers['content-type'] ?? 'no content type'}, ${req.payload.length} bytes: ${excerpt(req.payload)})`;
        assert.ok(res.statusCode < 500, `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400 && !sessionChanged(res)) {
          refused++;
          const now = await world.fingerprint();
          assert.equal(now, before, `${what} → ${res.statusCode}, refused, but rows changed`);
        }
        await settle(res);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    await world.assertHealthy();
    before = await world.fingerprint();
  });
}

test('the routes came from the app (a new route is covered without a line here)', () => {
  const names = bodyRoutes.map((r) => `${r.method} ${r.url}`);
  for (const expected of ['POST /api/chats/:id/messages', 'PATCH /api/chats/:id', 'POST /register', 'POST /admin/models/:id', 'POST /settings/profile']) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
  }
  console.log(`# hostile bodies: ${bodyRoutes.length} routes, ${generated} requests (${refused} refused with 4xx, rows checked unchanged)`);
});
