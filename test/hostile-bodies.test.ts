// test-runs-once: hostile input at the HTTP boundary (never a 5xx, a refusal changes no row); both runs are the same PostgreSQL engine, and the route tests check each query on both (scripts/test.ts runsOnce).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { type Encoding, encodeBody, hostileValue, mutatedPairs, oddType, type Pair, sized } from './hostile-input.ts';
import { excerpt, fillIn, IDENTITIES, type Identity, Judge, mainIdentity, type Route, startHostileWorld } from './hostile-world.ts';

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
const { app, limits, config } = world;

const bodyRoutes = world.routes.filter((r) => r.method !== 'GET');
const value = hostileValue(config.MAX_PROMPT_CHARS);
const sizes = [limits.form - 1, limits.form, limits.form + 1, limits.body - 1, limits.body, limits.body + 1, 2 * 1024 * 1024, 5 * 1024 * 1024 + 3];

/** Mostly the caller the route is for (so the handler runs), sometimes the others (so the guards are attacked too). */
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
  let contentType: string | undefined;
  let payload: Buffer;
  const s = c.shape;
  if (s.kind === 'mutated') ({ contentType, payload } = encodeBody(fillIn(s.pairs, client), s.encoding, c.odd));
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

const judge = new Judge(world);
await judge.start();

for (const route of bodyRoutes) {
  test(`${route.method} ${route.url}: hostile bodies never get a 5xx, and a refusal writes nothing`, async () => {
    const starts = await judge.acceptedBodies(route);
    await fc.assert(
      fc.asyncProperty(caseFor(route, starts), async (c) => {
        await judge.begin();
        const req = request(route, c);
        const res = await app.inject(req);
        const type = req.headers['content-type'] ?? 'no content type';
        await judge.judge(`${req.method} ${req.url} as ${c.identity} (${type}, ${req.payload.length} bytes: ${excerpt(req.payload)})`, res);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    await world.assertHealthy();
    await judge.start();
  });
}

test('the routes came from the app (a new route is covered without a line here)', () => {
  const names = bodyRoutes.map((r) => `${r.method} ${r.url}`);
  for (const expected of ['POST /api/chats/:id/messages', 'PATCH /api/chats/:id', 'POST /register', 'POST /admin/models/:id', 'POST /settings/profile']) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
  }
  console.log(`# hostile bodies: ${bodyRoutes.length} routes, ${judge.generated} requests (${judge.refused} refused with 4xx, rows checked unchanged)`);
});
