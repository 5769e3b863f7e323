import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { BIDI_CONTROLS, displayNameProblem } from '../src/http/display-name.ts';
import { TestClient } from './client.ts';
import { typedText } from './hostile-input.ts';
import { Judge, startHostileWorld } from './hostile-world.ts';

/**
 * The ID token's claims are input too: GOOGLE_ISSUER may name any OpenID provider, and what it signs (the subject,
 * the address, the name) goes into app_user and oauth_identity. fast-check has the loopback provider sign hostile
 * claims (NUL, lone surrogates, addresses that are not addresses or longer than the column, names of thousands of
 * characters, subjects of kilobytes, other types) and completes a real sign-in with them.
 * Properties: the callback never answers 5xx nor logs an error; an account made from the claims holds text exactly
 * as stored (well-formed, no NUL, the name at most 100 code points and without bidi controls) and a valid address. fast-check picks the seed
 * and prints it on failure (HOSTILE_SEED, HOSTILE_RUNS).
 */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 30);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);

const world = await startHostileWorld();
after(() => world.close());
const { app, provider, database } = world;
const judge = new Judge(world);
await judge.start();

let fresh = 0;
const FRESH = 'fresh-address';
const poisoned = (s: string) => fc.constantFrom('\u0000', '\ud800', '\udfff', '\ufffd', '\u202e', ' ').map((p) => `${s}${p}`);
const claims = fc.record({
  sub: fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: poisoned('sub') },
    { weight: 1, arbitrary: fc.constantFrom(300, 3000, 100_000).map((n) => 'x'.repeat(n)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 2000, maxLength: 3000 }) },
  ),
  email: fc.oneof(
    { weight: 3, arbitrary: fc.constant<unknown>(FRESH) },
    { weight: 1, arbitrary: poisoned('x').map((p) => `${p}@example.com`) },
    { weight: 1, arbitrary: fc.constantFrom(250, 255, 300, 5000).map((n) => `${'x'.repeat(n)}@example.com`) },
    { weight: 1, arbitrary: fc.constantFrom('not an address', '@', 'a@', '', ' user@example.com ', 'USER@EXAMPLE.COM', 'user@example.com') },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(5, null, ['a@example.com'], { a: 1 }, true) },
  ),
  email_verified: fc.oneof({ weight: 4, arbitrary: fc.constant<unknown>(true) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(false, 'true', 1) }),
  name: fc.oneof(
    { weight: 2, arbitrary: typedText(1000) },
    { weight: 1, arbitrary: poisoned('Nina') },
    { weight: 1, arbitrary: fc.constantFrom(100, 101, 5000).map((n) => 'n'.repeat(n)) },
    // Longer than the 90 a name is cut to, with an emoji across the cut.
    { weight: 1, arbitrary: fc.constantFrom(88, 89, 90).map((n) => `${'n'.repeat(n)}😀😀`) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, null, 42, ['a']) },
  ),
});

test('hostile ID-token claims: the callback never answers 5xx, and an account made from them is whole', async () => {
  await fc.assert(
    fc.asyncProperty(claims, async (c) => {
      await judge.begin();
      const n = ++fresh;
      const signed = {
        ...c,
        // Each case its own subject (a known one would sign in to the account an earlier case made).
        sub: `${c.sub}-${n}-${Date.now()}`,
        email: c.email === FRESH ? `claims${n}-${Date.now()}@example.com` : c.email,
      };
      const browser = new TestClient(app);
      const start = await browser.get('/login/google');
      assert.equal(start.statusCode, 302, `GET /login/google answered ${start.statusCode}`);
      const back = new URL(await provider.authorize(String(start.headers.location), signed));
      const res = await browser.get(back.pathname + back.search);
      await judge.judge(`Google callback with claims ${JSON.stringify(signed).slice(0, 300)}`, res);
      const sub = String(signed.sub);
      // A subject PostgreSQL could not even compare has made nothing (and cannot be looked up).
      if (sub.includes('\u0000') || !sub.isWellFormed()) return;
      const made = await database.db
        .selectFrom('chatbot_schema.oauth_identity as i')
        .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'i.idappuser')
        .select(['u.txusername', 'u.txemail', sql<number>`length(u.txusername)`.as('chars')])
        .where('i.txsubject', '=', sub)
        .executeTakeFirst();
      if (made) {
        assert.ok(made.txusername.isWellFormed() && !made.txusername.includes('\u0000'), `name ${JSON.stringify(made.txusername)}`);
        assert.ok(made.chars <= 100, `name of ${made.chars} characters`);
        assert.ok(!BIDI_CONTROLS.test(made.txusername), `name ${JSON.stringify(made.txusername)} holds a bidi control`);
        const name = typeof c.name === 'string' ? c.name.trim() : '';
        // A name is used when the display-name rule takes it (else dropped for the address's local part), and made unique.
        if (name !== '' && name.isWellFormed() && !name.includes('\u0000') && displayNameProblem(name) === undefined) {
          assert.ok(made.txusername.startsWith(name), `name ${JSON.stringify(name)} stored as ${JSON.stringify(made.txusername)}`);
        }
        assert.match(made.txemail, /^[^\s@]+@[^\s@]+\.[^\s@]+$/, `address ${JSON.stringify(made.txemail)}`);
      }
    }),
    { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
  );
  await world.assertHealthy();
  console.log(`# hostile claims: ${judge.generated} sign-ins judged`);
});
