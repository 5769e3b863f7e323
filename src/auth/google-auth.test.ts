import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { foreignKeyToken, hs256Token, TestProvider, unsignedToken } from '../../test/google-provider.ts';
import { createUser } from '../users/user-queries.ts';
import { hashPassword } from './passwords.ts';

/**
 * Google sign-in over real HTTP against a real OpenID provider on loopback (oauth2-mock-server): the app's
 * openid-client does discovery, fetches the JWKS and exchanges the code with it; the browser's part (following the
 * authorize redirect) is done with fetch, the app's pages through inject with a cookie-keeping client.
 */
const provider = new TestProvider();
before(() => provider.start());
after(() => provider.stop());

const verified = (email: string, extra: Record<string, unknown> = {}) => ({ email, email_verified: true, name: undefined, hd: undefined, ...extra });

/** Clicks "Sign in with Google", passes the provider, and returns the app's answer to the callback. */
async function googleSignIn(c: TestClient, opts: { next?: string } = {}): Promise<LightMyRequestResponse> {
  const start = await c.get(`/login/google${opts.next ? `?next=${encodeURIComponent(opts.next)}` : ''}`);
  assert.equal(start.statusCode, 302, `GET /login/google answered ${start.statusCode}: ${start.body.slice(0, 200)}`);
  const back = new URL(await provider.authorize(String(start.headers.location)));
  return c.get(back.pathname + back.search);
}

/** The page the refusal lands on, with its message. */
async function landed(c: TestClient, res: LightMyRequestResponse): Promise<string> {
  assert.equal(res.statusCode, 303, `expected a redirect, got ${res.statusCode}`);
  assert.match(String(res.headers.location), /^\/login(\?|$)/);
  return (await c.get(String(res.headers.location))).body;
}

async function userRow(t: TestApp, email: string) {
  return t.database.db
    .selectFrom('chatbot_schema.app_user')
    .select(['idappuser', 'txusername', 'txemail', 'password'])
    .where(sql<string>`lower(txemail)`, '=', email.toLowerCase())
    .executeTakeFirst();
}

async function rolesOf(t: TestApp, id: number): Promise<number[]> {
  const rows = await t.database.db.selectFrom('chatbot_schema.user_role').select('idrole').where('idappuser', '=', id).orderBy('idrole').execute();
  return rows.map((r) => r.idrole);
}

const countIdentities = async (t: TestApp) =>
  Number(
    (
      await t.database.db
        .selectFrom('chatbot_schema.oauth_identity')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
const countUsers = async (t: TestApp) =>
  Number(
    (
      await t.database.db
        .selectFrom('chatbot_schema.app_user')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('first sign-ins and returning users', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env());
  });
  after(() => t.close());
  beforeEach(() => {
    provider.claims = {};
    provider.forgeNext = undefined;
  });

  test('the first account ever, made by Google, is Admin; the next is a User; both signed in to /chat', async () => {
    provider.claims = { sub: 'g-first', ...verified('first@example.com', { name: 'First Person' }) };
    const c = new TestClient(t.app);
    const res = await googleSignIn(c);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    const first = await userRow(t, 'first@example.com');
    assert.ok(first);
    assert.equal(first.txusername, 'First Person');
    assert.equal(first.password, null);
    assert.deepEqual(await rolesOf(t, first.idappuser), [1, 2]);
    const chat = await c.get('/chat');
    assert.equal(chat.statusCode, 200);
    const method = await t.database.db
      .selectFrom('chatbot_schema.session')
      .select('txsign_in_method')
      .where('idappuser', '=', first.idappuser)
      .executeTakeFirst();
    assert.equal(method?.txsign_in_method, 'google');

    provider.claims = { sub: 'g-second', ...verified('second@example.com', { name: 'First Person' }) };
    const c2 = new TestClient(t.app);
    assert.equal((await googleSignIn(c2)).headers.location, '/chat');
    const second = await userRow(t, 'second@example.com');
    assert.ok(second);
    assert.deepEqual(await rolesOf(t, second.idappuser), [2]);
    assert.equal(second.txusername, 'First Person 2', 'the name is made unique');
  });

  test('without a name claim the username is the local part of the e-mail', async () => {
    provider.claims = { sub: 'g-noname', ...verified('no.name@example.com') };
    assert.equal((await googleSignIn(new TestClient(t.app))).headers.location, '/chat');
    assert.equal((await userRow(t, 'no.name@example.com'))?.txusername, 'no.name');
  });

  test('a returning user is found by sub even after the e-mail changed at Google; the address follows when free', async () => {
    provider.claims = { sub: 'g-mover', ...verified('old@example.com') };
    await googleSignIn(new TestClient(t.app));
    const before = await userRow(t, 'old@example.com');
    assert.ok(before);
    provider.claims = { sub: 'g-mover', ...verified('new@example.com') };
    const c = new TestClient(t.app);
    assert.equal((await googleSignIn(c)).headers.location, '/chat');
    assert.equal((await userRow(t, 'new@example.com'))?.idappuser, before.idappuser);
    assert.equal(await userRow(t, 'old@example.com'), undefined);

    // Changed to an address another account has: same account, its address stays.
    provider.claims = { sub: 'g-mover', ...verified('first@example.com') };
    const users = await countUsers(t);
    assert.equal((await googleSignIn(new TestClient(t.app))).headers.location, '/chat');
    assert.equal((await userRow(t, 'new@example.com'))?.idappuser, before.idappuser);
    assert.equal(await countUsers(t), users);
  });

  test('email_verified false (or missing): refused with a message, nothing created', async () => {
    const users = await countUsers(t);
    for (const flag of [false, undefined, 'true']) {
      provider.claims = { sub: `g-unverified-${String(flag)}`, email: 'unverified@example.com', email_verified: flag };
      const c = new TestClient(t.app);
      assert.match(await landed(c, await googleSignIn(c)), /no verified e-mail address/);
    }
    assert.equal(await countUsers(t), users);
  });

  test('?next= survives the round trip; an unsafe one is dropped', async () => {
    provider.claims = { sub: 'g-next', ...verified('next@example.com') };
    await googleSignIn(new TestClient(t.app));
    assert.equal((await googleSignIn(new TestClient(t.app), { next: '/chat/42' })).headers.location, '/chat/42');
    assert.equal((await googleSignIn(new TestClient(t.app), { next: '//evil.example/x' })).headers.location, '/chat');
  });

  test('a deactivated account cannot sign in with Google (the message of completeSignIn)', async () => {
    provider.claims = { sub: 'g-deactivated', ...verified('deactivated@example.com') };
    await googleSignIn(new TestClient(t.app));
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('txemail', '=', 'deactivated@example.com').execute();
    const c = new TestClient(t.app);
    const res = await googleSignIn(c);
    assert.equal(
      res.cookies.some((k: { name: string }) => k.name === 'parley_session'),
      false,
    );
    assert.match(await landed(c, res), /This account is deactivated\. Ask an administrator/);
  });

  test('two tabs: starting a second sign-in does not break the first', async () => {
    provider.claims = { sub: 'g-tabs', ...verified('tabs@example.com') };
    const c = new TestClient(t.app);
    const tab1 = await c.get('/login/google');
    const tab2 = await c.get('/login/google');
    assert.notEqual(tab1.headers.location, tab2.headers.location);
    const back1 = new URL(await provider.authorize(String(tab1.headers.location)));
    const res = await c.get(back1.pathname + back1.search);
    assert.equal(res.headers.location, '/chat');
  });
});

describe('a callback that is not ours is refused, on /login with a message', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env());
  });
  after(() => t.close());
  beforeEach(() => {
    provider.claims = { sub: 'g-attacked', ...verified('attacked@example.com') };
    provider.forgeNext = undefined;
  });

  async function callbackUrl(c: TestClient): Promise<URL> {
    const start = await c.get('/login/google');
    return new URL(await provider.authorize(String(start.headers.location)));
  }

  const refusedWith = async (c: TestClient, res: LightMyRequestResponse, message: RegExp) => {
    assert.equal(
      res.cookies.some((k: { name: string }) => k.name === 'parley_session'),
      false,
      `no session: ${res.statusCode} ${res.headers.location} ${JSON.stringify(res.cookies)}`,
    );
    assert.match(await landed(c, res), message);
  };

  test('missing state', async () => {
    const c = new TestClient(t.app);
    const url = await callbackUrl(c);
    url.searchParams.delete('state');
    await refusedWith(c, await c.get(url.pathname + url.search), /not valid/);
  });

  test('tampered state (another well-formed value)', async () => {
    const c = new TestClient(t.app);
    const url = await callbackUrl(c);
    url.searchParams.set('state', 'A'.repeat(43));
    await refusedWith(c, await c.get(url.pathname + url.search), /another browser/);
  });

  test('tampered state cookie', async () => {
    const c = new TestClient(t.app);
    const url = await callbackUrl(c);
    for (const [k, v] of c.cookies) if (k.startsWith('parley_oidc_')) c.cookies.set(k, `${v.slice(0, -4)}AAAA`);
    await refusedWith(c, await c.get(url.pathname + url.search), /another browser/);
  });

  test('the callback opened in another browser (login CSRF)', async () => {
    const url = await callbackUrl(new TestClient(t.app));
    const other = new TestClient(t.app);
    await refusedWith(other, await other.get(url.pathname + url.search), /another browser/);
  });

  test('a replayed callback: the flow is used once, and the provider refuses a reused code', async () => {
    provider.claims = { sub: 'g-replayed', ...verified('replayed@example.com') };
    const c = new TestClient(t.app);
    const url = await callbackUrl(c);
    const saved = new Map(c.cookies);
    assert.equal((await c.get(url.pathname + url.search)).headers.location, '/chat');
    const again = new TestClient(t.app);
    await refusedWith(again, await again.get(url.pathname + url.search), /another browser/);
    // Even with the flow cookie kept from before (an attacker's copy), the code is spent.
    const withCopy = new TestClient(t.app);
    for (const [k, v] of saved) if (k.startsWith('parley_oidc_')) withCopy.cookies.set(k, v);
    await refusedWith(withCopy, await withCopy.get(url.pathname + url.search), /did not complete/);
  });

  test('cancelled at the provider (error=access_denied)', async () => {
    const c = new TestClient(t.app);
    const url = await callbackUrl(c);
    const cancelled = `/login/google/authorized?error=access_denied&state=${url.searchParams.get('state')}`;
    await refusedWith(c, await c.get(cancelled), /cancelled/);
  });

  const claimCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['wrong nonce', { nonce: 'not-the-nonce' }, /did not complete/],
    ['wrong aud', { aud: 'someone-else' }, /did not complete/],
    ['wrong iss', { iss: 'http://127.0.0.1:1/evil' }, /did not complete/],
    ['expired', { exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 4000 }, /clock/],
    ['issued in the future (clock skew)', { iat: Math.floor(Date.now() / 1000) + 600 }, /clock/],
    ['not valid yet (nbf in the future)', { nbf: Math.floor(Date.now() / 1000) + 600 }, /clock/],
    ['no sub', { sub: undefined }, /did not complete/],
  ];
  for (const [name, claims, message] of claimCases) {
    test(`ID token with ${name}`, async () => {
      provider.claims = { ...provider.claims, ...claims };
      const c = new TestClient(t.app);
      await refusedWith(c, await googleSignIn(c), message);
      assert.equal(await userRow(t, 'attacked@example.com'), undefined);
    });
  }

  test('alg none', async () => {
    provider.forgeNext = (nonce) => unsignedToken(provider.baseClaims(nonce));
    const c = new TestClient(t.app);
    await refusedWith(c, await googleSignIn(c), /did not complete/);
  });

  test('HS256 signed with the public key (algorithm confusion)', async () => {
    const jwk = await provider.publicJwk();
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [String(pem), JSON.stringify(jwk)]) {
      provider.forgeNext = (nonce) => hs256Token(provider.baseClaims(nonce), secret, jwk.kid);
      const c = new TestClient(t.app);
      await refusedWith(c, await googleSignIn(c), /did not complete/);
    }
  });

  test('unknown kid (a key the provider never published)', async () => {
    provider.forgeNext = (nonce) => foreignKeyToken(provider.baseClaims(nonce));
    const c = new TestClient(t.app);
    await refusedWith(c, await googleSignIn(c), /did not complete/);
  });

  test('nothing above created an account', async () => {
    assert.equal(await userRow(t, 'attacked@example.com'), undefined);
  });
});

describe('provider down at start, then back: the next sign-in discovers again', () => {
  test('discovery failure lands on /login, and a later attempt succeeds', async () => {
    const down = new TestProvider();
    await down.start();
    const issuer = down.issuer;
    await down.stop();
    const t = await startTestApp({ ...provider.env(), GOOGLE_ISSUER: issuer });
    try {
      const c = new TestClient(t.app);
      const res = await c.get('/login/google');
      assert.match(await landed(c, res), /unavailable right now/);
      // Back on the same address.
      const port = Number(new URL(issuer).port);
      const up = new TestProvider();
      await up.server.issuer.keys.generate('RS256');
      await up.server.start(port, '127.0.0.1');
      try {
        await new Promise((r) => setTimeout(r, 2100));
        const again = await c.get('/login/google');
        assert.equal(again.statusCode, 302);
        assert.ok(String(again.headers.location).startsWith(issuer));
      } finally {
        await up.stop();
      }
    } finally {
      await t.close();
    }
  });
});

describe('GOOGLE_ALLOWED_DOMAINS checks the signed hd claim (Google: OIDC_DOMAIN_CLAIM=hd, the default for its issuer)', () => {
  let t: TestApp;
  before(async () => {
    // The loopback provider stands in for Google, whose issuer is what makes `hd` the default.
    t = await startTestApp(provider.env({ GOOGLE_ALLOWED_DOMAINS: 'example.org, corp.example', OIDC_DOMAIN_CLAIM: 'hd' }));
  });
  after(() => t.close());

  test('hd in the list: signed in; another hd, or none (even with a matching e-mail suffix): refused', async () => {
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-hd-ok', ...verified('ok@corp.example', { hd: 'corp.example' }) };
    assert.equal((await googleSignIn(new TestClient(t.app))).headers.location, '/chat');
    for (const hd of ['other.example', undefined]) {
      provider.claims = { sub: `g-hd-${String(hd)}`, ...verified('someone@example.org', { hd }) };
      const c = new TestClient(t.app);
      assert.match(await landed(c, await googleSignIn(c)), /not from an organisation allowed/);
    }
    assert.equal(await userRow(t, 'someone@example.org'), undefined);
  });
});

describe('REGISTRATION=closed', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env({ REGISTRATION: 'closed' }));
  });
  after(() => t.close());

  test('an account an admin made without a password is claimed by the first verified Google identity, and only by it', async () => {
    const { id } = await createUser(t.database.db, { username: 'Google only', email: 'preset@example.com', passwordHash: null });
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-preset', ...verified('Preset@example.com') };
    assert.equal((await googleSignIn(new TestClient(t.app))).headers.location, '/chat');
    const identity = await t.database.db.selectFrom('chatbot_schema.oauth_identity').select('idappuser').where('txsubject', '=', 'g-preset').executeTakeFirst();
    assert.equal(identity?.idappuser, id);
    // Another Google account with that address (another sub) does not take it over.
    provider.claims = { sub: 'g-preset-other', ...verified('preset@example.com') };
    const c = new TestClient(t.app);
    assert.match(await landed(c, await googleSignIn(c)), /linked to another sign-in/);
    await t.database.db.deleteFrom('chatbot_schema.app_user').where('idappuser', '=', id).execute();
  });

  test('refuses a new Google account; an account an admin made is reached through the link page', async () => {
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-closed', ...verified('closed@example.com') };
    const c = new TestClient(t.app);
    assert.match(await landed(c, await googleSignIn(c)), /does not accept new accounts/);
    assert.equal(await countUsers(t), 0);
    await createUser(t.database.db, { username: 'Pre', email: 'closed@example.com', passwordHash: await hashPassword(DEFAULT_PASSWORD) });
    const res = await googleSignIn(c);
    assert.equal(res.headers.location, '/login/google/link');
  });
});

describe('an existing local account with the e-mail is linked only with its password', () => {
  let t: TestApp;
  let victimId: number;
  before(async () => {
    t = await startTestApp(provider.env());
    const c = new TestClient(t.app);
    await c.register({ username: 'Local', email: 'local@example.com' });
    victimId = (await userRow(t, 'local@example.com'))?.idappuser ?? 0;
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-linker', ...verified('Local@Example.com') };
  });
  after(() => t.close());

  test('the callback only offers the link page: no session, nothing linked', async () => {
    const c = new TestClient(t.app);
    const res = await googleSignIn(c);
    assert.equal(res.headers.location, '/login/google/link');
    assert.equal(
      res.cookies.some((k: { name: string }) => k.name === 'parley_session'),
      false,
    );
    assert.equal(await countIdentities(t), 0);
    const page = await c.get('/login/google/link');
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /An account with this e-mail exists — enter its password to link Google/);
    // The link page is no way into the app.
    assert.match(String((await c.get('/chat')).headers.location), /^\/login/);
  });

  test('a wrong password is refused and counted by the /login throttle; the link page without the cookie sends to /login', async () => {
    const c = new TestClient(t.app);
    await googleSignIn(c);
    await c.get('/login/google/link');
    const wrong = await c.post('/login/google/link', { password: 'not the password at all' });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /Wrong password/);
    assert.equal(await countIdentities(t), 0);
    const row = await t.database.db
      .selectFrom('chatbot_schema.login_throttle')
      .select('nfailures')
      .where('txkey', '=', 'pw:local@example.com')
      .executeTakeFirst();
    assert.equal(row?.nfailures, 1);
    const stranger = new TestClient(t.app);
    await stranger.get('/login');
    assert.match(String((await stranger.post('/login/google/link', { password: DEFAULT_PASSWORD })).headers.location), /^\/login/);
  });

  test('the throttle locks after 10 wrong passwords (429), for /login too', async () => {
    const c = new TestClient(t.app);
    await googleSignIn(c);
    await c.get('/login/google/link');
    let last: LightMyRequestResponse | undefined;
    for (let i = 0; i < 10; i++) last = await c.post('/login/google/link', { password: `wrong ${i}` });
    assert.equal(last?.statusCode, 429);
    assert.ok(Number(last?.headers['retry-after']) > 0);
    // Locked: even the right password is not tried now.
    assert.equal((await c.post('/login/google/link', { password: DEFAULT_PASSWORD })).statusCode, 429);
    assert.equal((await new TestClient(t.app).login('local@example.com')).statusCode, 429);
    assert.equal(await countIdentities(t), 0);
    await t.database.db.deleteFrom('chatbot_schema.login_throttle').execute();
  });

  test('the right password links Google and signs in; afterwards Google alone reaches the account', async () => {
    const c = new TestClient(t.app);
    await googleSignIn(c, { next: '/chat/7' });
    await c.get('/login/google/link');
    const ok = await c.post('/login/google/link', { password: DEFAULT_PASSWORD });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/chat/7');
    const identity = await t.database.db.selectFrom('chatbot_schema.oauth_identity').selectAll().executeTakeFirstOrThrow();
    assert.equal(identity.idappuser, victimId);
    assert.equal(identity.txsubject, 'g-linker');
    assert.equal(identity.txissuer, provider.issuer);
    const later = new TestClient(t.app);
    assert.equal((await googleSignIn(later)).headers.location, '/chat');
    assert.equal(await countUsers(t), 1);
  });
});

describe('"Google link pending" is not signed in', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env());
    await new TestClient(t.app).register({ username: 'Pending Link', email: 'pending-link@example.com' });
  });
  after(() => t.close());

  test('a browser waiting to prove the password reaches the link page and the sign-in pages, nothing else', async () => {
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-pending-link', ...verified('pending-link@example.com') };
    const c = new TestClient(t.app);
    assert.equal((await googleSignIn(c)).headers.location, '/login/google/link');
    assert.equal((await c.get('/login/google/link')).statusCode, 200);
    assert.equal((await c.get('/login')).statusCode, 200);
    for (const url of ['/', '/chat', '/chat/1', '/settings', '/admin/users', '/admin/models']) {
      assert.match(String((await c.get(url)).headers.location), /^\/login(\?|$)/, url);
    }
    assert.equal((await c.postJson('/api/chats', { llm: 1 })).statusCode, 401);
    assert.equal(await countIdentities(t), 0);
  });

  test('a tampered link cookie is worthless', async () => {
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-pending-link', ...verified('pending-link@example.com') };
    const c = new TestClient(t.app);
    await googleSignIn(c);
    const name = 'parley_google_link';
    const value = c.cookies.get(name);
    assert.ok(value);
    c.cookies.set(name, `${value.slice(0, 10)}${value[10] === 'A' ? 'B' : 'A'}${value.slice(11)}`);
    assert.match(String((await c.get('/login/google/link')).headers.location), /^\/login/);
    await c.get('/login'); // a CSRF token, so the POST is refused for the cookie and not for the token
    assert.match(String((await c.post('/login/google/link', { password: DEFAULT_PASSWORD })).headers.location), /^\/login/);
    assert.equal(await countIdentities(t), 0);
  });
});

describe('every refusal is one log line with a reason code, without tokens or codes', () => {
  test('a replayed callback and a wrong nonce', async () => {
    const { buildApp } = await import('../app.ts');
    const { testConfig } = await import('../../test/app.ts');
    const { openTestDatabase } = await import('../../test/database.ts');
    const { Writable } = await import('node:stream');
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const database = await openTestDatabase();
    const app = await buildApp({ config: testConfig(provider.env()), db: database.db, logger: { level: 'info', stream } });
    try {
      provider.forgeNext = undefined;
      provider.claims = { sub: 'g-logged', ...verified('logged@example.com'), nonce: 'wrong' };
      const c = new TestClient(app);
      const start = await c.get('/login/google');
      const back = new URL(await provider.authorize(String(start.headers.location)));
      lines.length = 0;
      const res = await c.get(back.pathname + back.search);
      assert.equal(res.headers.location, '/login');
      const refusals = lines.filter((l) => l.includes('google sign-in refused'));
      assert.equal(refusals.length, 1, lines.join('\n'));
      assert.equal(JSON.parse(refusals[0] ?? '{}').reason, 'id_token_jwt_claim_comparison_failed');
      const code = back.searchParams.get('code') ?? '';
      const state = back.searchParams.get('state') ?? '';
      for (const line of lines) {
        assert.ok(!line.includes(code), 'the code is not logged');
        assert.ok(!line.includes(state), 'the state is not logged');
        assert.ok(!/eyJ[A-Za-z0-9_-]{10,}/.test(line), 'no JWT in the log');
      }
    } finally {
      await app.close();
      await database.close();
    }
  });
});

describe('LOCAL_LOGIN=false: Google only', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env({ LOCAL_LOGIN: 'false' }));
  });
  after(() => t.close());

  test('the login page is one Google button; password routes refuse; Google signs in', async () => {
    const c = new TestClient(t.app);
    const page = await c.get('/login?next=/chat/3');
    assert.equal(page.statusCode, 200);
    assert.doesNotMatch(page.body, /name="password"/);
    assert.doesNotMatch(page.body, /href="\/register"/);
    assert.match(page.body, /href="\/login\/google\?next=%2Fchat%2F3"/);
    assert.match(page.body, /Sign in with Google/);
    assert.equal((await c.post('/login', { email: 'a@example.com', password: DEFAULT_PASSWORD })).statusCode, 403);
    assert.equal((await c.get('/register')).statusCode, 403);
    assert.equal((await c.post('/register', { username: 'x', email: 'x@example.com', password: DEFAULT_PASSWORD })).statusCode, 403);
    provider.forgeNext = undefined;
    provider.claims = { sub: 'g-only', ...verified('only@example.com') };
    assert.equal((await googleSignIn(c)).headers.location, '/chat');
  });
});

describe('the button', () => {
  test('on /login and /register only when GOOGLE_CLIENT_ID is set; the G mark is served from our origin', async () => {
    const without = await startTestApp();
    const withGoogle = await startTestApp(provider.env());
    try {
      for (const url of ['/login', '/register']) {
        assert.doesNotMatch((await without.app.inject(url)).body, /Sign in with Google/);
        const body = (await withGoogle.app.inject(url)).body;
        assert.match(body, /<a class="gsi-button[^"]*" href="\/login\/google">/);
        assert.match(body, /src="\/static\/google-g\.svg"/);
        assert.match(body, /Sign in with Google/);
      }
      const svg = await withGoogle.app.inject('/static/google-g.svg');
      assert.equal(svg.statusCode, 200);
      assert.match(String(svg.headers['content-type']), /image\/svg\+xml/);
      assert.equal((await without.app.inject('/login/google')).statusCode, 404);
    } finally {
      await without.close();
      await withGoogle.close();
    }
  });
});

describe('queries for the settings page', () => {
  test('listIdentities shows the linked identity; unlinking needs a password on the account', async () => {
    const { listIdentities, unlinkIdentityIfPasswordSet } = await import('./google-queries.ts');
    const { setPasswordHash } = await import('../users/user-queries.ts');
    const t = await startTestApp(provider.env());
    try {
      provider.forgeNext = undefined;
      provider.claims = { sub: 'g-settings', ...verified('settings@example.com') };
      await googleSignIn(new TestClient(t.app));
      const user = await userRow(t, 'settings@example.com');
      assert.ok(user);
      const [identity, ...more] = await listIdentities(t.database.db, user.idappuser);
      assert.ok(identity);
      assert.equal(more.length, 0);
      assert.deepEqual(
        { issuer: identity.issuer, subject: identity.subject, email: identity.email },
        { issuer: provider.issuer, subject: 'g-settings', email: 'settings@example.com' },
      );
      // Google-only: unlinking would lock the person out.
      assert.equal(await unlinkIdentityIfPasswordSet(t.database.db, user.idappuser, identity), false);
      assert.equal((await listIdentities(t.database.db, user.idappuser)).length, 1);
      await setPasswordHash(t.database.db, user.idappuser, await hashPassword(DEFAULT_PASSWORD));
      assert.equal(await unlinkIdentityIfPasswordSet(t.database.db, user.idappuser, identity), true);
      assert.equal((await listIdentities(t.database.db, user.idappuser)).length, 0);
    } finally {
      await t.close();
    }
  });
});

describe('the provider goes down between the redirect and the callback', () => {
  test('the token request fails: /login with a message, reason provider_unreachable', async () => {
    const flaky = new TestProvider();
    await flaky.start();
    flaky.claims = { sub: 'g-flaky', ...verified('flaky@example.com') };
    const t = await startTestApp(flaky.env());
    try {
      const c = new TestClient(t.app);
      const start = await c.get('/login/google');
      const back = new URL(await flaky.authorize(String(start.headers.location)));
      await flaky.stop();
      assert.match(await landed(c, await c.get(back.pathname + back.search)), /could not be reached/);
      assert.equal(await userRow(t, 'flaky@example.com'), undefined);
    } finally {
      await t.close();
    }
  });
});

describe('TOTP_FOR_OAUTH', () => {
  for (const [flag, expected] of [
    ['false', '/chat'],
    ['true', '/login/2fa'],
  ] as const) {
    test(`=${flag}: a Google sign-in of an account with 2FA goes to ${expected}`, async () => {
      const t = await startTestApp(provider.env({ TOTP_FOR_OAUTH: flag }));
      try {
        provider.forgeNext = undefined;
        provider.claims = { sub: 'g-2fa', ...verified('two-factor@example.com') };
        await googleSignIn(new TestClient(t.app));
        await t.database.db.updateTable('chatbot_schema.app_user').set({ is_2fa_enabled: true }).where('txemail', '=', 'two-factor@example.com').execute();
        assert.equal((await googleSignIn(new TestClient(t.app))).headers.location, expected);
      } finally {
        await t.close();
      }
    });
  }
});

describe('linking an account with 2FA passes the second step first', () => {
  test('the right password leads to /login/2fa, nothing linked yet; once signed in fully, the link completes', async () => {
    const { createSession } = await import('./sessions.ts');
    const t = await startTestApp(provider.env());
    try {
      await new TestClient(t.app).register({ username: 'With 2FA', email: 'with-2fa@example.com' });
      const user = await userRow(t, 'with-2fa@example.com');
      assert.ok(user);
      await t.database.db.updateTable('chatbot_schema.app_user').set({ is_2fa_enabled: true }).where('idappuser', '=', user.idappuser).execute();
      provider.forgeNext = undefined;
      provider.claims = { sub: 'g-with-2fa', ...verified('with-2fa@example.com') };
      const c = new TestClient(t.app);
      assert.equal((await googleSignIn(c, { next: '/chat/5' })).headers.location, '/login/google/link');
      await c.get('/login/google/link');
      const res = await c.post('/login/google/link', { password: DEFAULT_PASSWORD });
      assert.equal(res.statusCode, 303);
      assert.equal(res.headers.location, `/login/2fa?next=${encodeURIComponent('/login/google/link/complete')}`);
      assert.equal(await countIdentities(t), 0, 'nothing linked before the second factor');
      // Half-signed-in: the completion is out of reach.
      assert.match(String((await c.get('/login/google/link/complete')).headers.location), /^\/login\/2fa/);
      assert.equal(await countIdentities(t), 0);

      // What the second step does when the code is right: a complete session (the 2FA slice's own tests cover the step).
      const other = new TestClient(t.app);
      other.cookies.set('parley_session', await createSession(t.database.db, user.idappuser, {}));
      assert.equal((await other.get('/login/google/link/complete')).headers.location, '/chat', 'another browser has no link cookie');
      assert.equal(await countIdentities(t), 0);
      c.cookies.set('parley_session', await createSession(t.database.db, user.idappuser, {}));
      const done = await c.get('/login/google/link/complete');
      assert.equal(done.headers.location, '/chat/5');
      const identity = await t.database.db.selectFrom('chatbot_schema.oauth_identity').select(['idappuser', 'txsubject']).executeTakeFirst();
      assert.deepEqual(identity, { idappuser: user.idappuser, txsubject: 'g-with-2fa' });
      // The cookie is spent.
      assert.equal(c.cookies.has('parley_google_link'), false);
    } finally {
      await t.close();
    }
  });
});
