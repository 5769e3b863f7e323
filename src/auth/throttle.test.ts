import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { ACCOUNT_PASSWORD_RULE, IP_PASSWORD_RULE } from './throttle.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
  await new TestClient(t.app).register({ username: 'Victim', email: 'victim@example.com' });
  await new TestClient(t.app).register({ username: 'Other', email: 'other@example.com' });
  await new TestClient(t.app).register({ username: 'Window', email: 'window@example.com' });
});
after(() => t.close());

/** One sign-in attempt as a fresh browser from `ip`: fetch the form (for its CSRF token), post it. */
async function attempt(app: FastifyInstance, email: string, password: string, ip = '192.0.2.1'): Promise<LightMyRequestResponse> {
  const page = await app.inject({ method: 'GET', url: '/login', remoteAddress: ip });
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] ?? '';
  const csrfCookie = (page.cookies as Array<{ name: string; value: string }>).find((c) => c.name === 'parley_csrf');
  return app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress: ip,
    cookies: csrfCookie ? { parley_csrf: csrfCookie.value } : {},
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: token, email, password }).toString(),
  });
}

const throttleRow = (key: string) =>
  t.database.db.selectFrom('chatbot_schema.login_throttle').select(['nfailures', 'dtlocked_until']).where('txkey', '=', key).executeTakeFirst();

function assertLocked(res: LightMyRequestResponse): void {
  assert.equal(res.statusCode, 429, res.body.slice(0, 200));
  const retryAfterS = Number(res.headers['retry-after']);
  assert.ok(retryAfterS > 0 && retryAfterS <= ACCOUNT_PASSWORD_RULE.lockMs / 1000, `Retry-After: ${res.headers['retry-after']}`);
  assert.match(res.body, /Too many failed attempts/);
  assert.equal(
    (res.cookies as Array<{ name: string }>).find((c) => c.name === 'parley_session'),
    undefined,
    'no session on a refused sign-in',
  );
}

describe('per-account throttle', () => {
  test('the rule is the contract’s: 10 failures in 15 minutes lock for 15 minutes', () => {
    assert.deepEqual(ACCOUNT_PASSWORD_RULE, { maxFailures: 10, windowMs: 15 * 60 * 1000, lockMs: 15 * 60 * 1000 });
  });

  test('10 wrong passwords lock the account: the 11th attempt is 429 even with the right password', async () => {
    for (let i = 1; i <= 10; i++) {
      // From several addresses: the lock is the account's, not the address's.
      const res = await attempt(t.app, 'victim@example.com', `wrong password ${i}`, `192.0.2.${i}`);
      assert.equal(res.statusCode, 401, `attempt ${i}`);
    }
    assertLocked(await attempt(t.app, 'victim@example.com', DEFAULT_PASSWORD));
    // Whatever the case of the address, and from a new address.
    assertLocked(await attempt(t.app, 'VICTIM@Example.com', DEFAULT_PASSWORD, '198.51.100.7'));
    // Refused attempts while locked do not extend the lock or count again.
    const row = await throttleRow('pw:victim@example.com');
    assert.equal(row?.nfailures, 10);
    assert.ok(row?.dtlocked_until && row.dtlocked_until.getTime() > Date.now());
    // Other accounts are untouched.
    assert.equal((await attempt(t.app, 'other@example.com', DEFAULT_PASSWORD)).statusCode, 303);
  });

  test('the lock is in the database: a second app process on the same database answers 429 too', async () => {
    const second = await startTestApp({}, t.database);
    try {
      assertLocked(await attempt(second.app, 'victim@example.com', DEFAULT_PASSWORD, '203.0.113.50'));
    } finally {
      await second.close();
    }
  });

  test('once the lock has passed, the right password works and the counter is cleared', async () => {
    await t.database.db
      .updateTable('chatbot_schema.login_throttle')
      .set({ dtlocked_until: sql`now() - interval '1 second'`, dtwindow_start: sql`now() - interval '16 minutes'` })
      .where('txkey', '=', 'pw:victim@example.com')
      .execute();
    const res = await attempt(t.app, 'victim@example.com', DEFAULT_PASSWORD);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    assert.equal(await throttleRow('pw:victim@example.com'), undefined);
  });

  test('failures older than the window are forgotten: 9 old + 1 new does not lock', async () => {
    for (let i = 0; i < 9; i++) assert.equal((await attempt(t.app, 'window@example.com', 'not the password')).statusCode, 401);
    await t.database.db
      .updateTable('chatbot_schema.login_throttle')
      .set({ dtwindow_start: sql`now() - interval '16 minutes'` })
      .where('txkey', '=', 'pw:window@example.com')
      .execute();
    assert.equal((await attempt(t.app, 'window@example.com', 'not the password')).statusCode, 401);
    assert.equal((await throttleRow('pw:window@example.com'))?.nfailures, 1);
    assert.equal((await attempt(t.app, 'window@example.com', DEFAULT_PASSWORD)).statusCode, 303);
  });
});

describe('per-address limit', () => {
  test(`${IP_PASSWORD_RULE.maxFailures} failures from one address lock that address, whichever accounts they tried`, async () => {
    const ip = '198.51.100.99';
    for (let i = 0; i < IP_PASSWORD_RULE.maxFailures; i++) {
      // Each a different (unknown) account, so no account lock is involved.
      assert.equal((await attempt(t.app, `guess-${i}@example.com`, 'guess', ip)).statusCode, 401, `attempt ${i}`);
    }
    assertLocked(await attempt(t.app, 'other@example.com', DEFAULT_PASSWORD, ip));
    // The account itself is fine from anywhere else.
    assert.equal((await attempt(t.app, 'other@example.com', DEFAULT_PASSWORD, '198.51.100.100')).statusCode, 303);
  });
});

/** Loads the form first (for its CSRF token), so that the posts themselves can be sent all at the same moment. */
async function preparedAttempt(app: FastifyInstance, email: string, password: string, ip: string): Promise<() => Promise<LightMyRequestResponse>> {
  const page = await app.inject({ method: 'GET', url: '/login', remoteAddress: ip });
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] ?? '';
  const csrf = (page.cookies as Array<{ name: string; value: string }>).find((c) => c.name === 'parley_csrf')?.value ?? '';
  return () =>
    app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: ip,
      cookies: { parley_csrf: csrf },
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: token, email, password }).toString(),
    });
}

const tally = (responses: LightMyRequestResponse[]) => {
  const counts: Record<number, number> = {};
  for (const r of responses) counts[r.statusCode] = (counts[r.statusCode] ?? 0) + 1;
  return counts;
};

describe('bursts: attempts are reserved before the password is verified', () => {
  test('30 wrong passwords for one account at once: exactly 10 are verified (401), 20 refused (429) (the race bites only on PostgreSQL)', async () => {
    await new TestClient(t.app).register({ username: 'Burst', email: 'burst@example.com' });
    const sends = await Promise.all(Array.from({ length: 30 }, (_, i) => preparedAttempt(t.app, 'burst@example.com', `wrong ${i}`, `192.0.2.${100 + i}`)));
    const results = await Promise.all(sends.map((send) => send()));
    assert.deepEqual(tally(results), { 401: 10, 429: 20 });
    assert.equal((await throttleRow('pw:burst@example.com'))?.nfailures, 10);
    // And the account stays locked for the right password too.
    assertLocked(await attempt(t.app, 'burst@example.com', DEFAULT_PASSWORD, '192.0.2.250'));
  });

  test(`${IP_PASSWORD_RULE.maxFailures + 20} guesses from one address at once, each for another account: exactly ${IP_PASSWORD_RULE.maxFailures} are verified (the race bites only on PostgreSQL)`, async () => {
    const ip = '198.51.100.150';
    const n = IP_PASSWORD_RULE.maxFailures + 20;
    const sends = await Promise.all(Array.from({ length: n }, (_, i) => preparedAttempt(t.app, `spray-${i}@example.com`, 'guess', ip)));
    const results = await Promise.all(sends.map((send) => send()));
    assert.deepEqual(tally(results), { 401: IP_PASSWORD_RULE.maxFailures, 429: 20 });
  });

  test('successful sign-ins from a shared address do not add up to a lock of that address', async () => {
    const ip = '198.51.100.160';
    for (let i = 0; i < IP_PASSWORD_RULE.maxFailures + 5; i++) {
      const res = await attempt(t.app, 'other@example.com', DEFAULT_PASSWORD, ip);
      assert.equal(res.statusCode, 303, `sign-in ${i}`);
    }
    assert.equal((await throttleRow(`ip:${ip}`))?.nfailures ?? 0, 0);
  });

  test('a request refused by the address lock is not counted against the account', async () => {
    const ip = '198.51.100.170';
    for (let i = 0; i < IP_PASSWORD_RULE.maxFailures; i++) await attempt(t.app, `fill-${i}@example.com`, 'guess', ip);
    assertLocked(await attempt(t.app, 'window@example.com', 'wrong again', ip));
    const row = await throttleRow('pw:window@example.com');
    assert.equal(row?.nfailures ?? 0, 0);
  });
});
