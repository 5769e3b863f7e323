import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from './app.ts';
import { BASIC_CLIENT, CertifiedProvider, POST_CLIENT } from './certified-provider.ts';
import { TestClient } from './client.ts';

/**
 * Sign-in against a certified OpenID provider library (panva's oidc-provider) on its default settings, over real
 * HTTP: the app's openid-client does discovery, the provider's own login and consent pages are filled in, the code
 * is exchanged and UserInfo fetched by the app. Google-only habits (prompt=select_account, client_secret_post, claims
 * in the ID token) are what such a provider refuses or does not do.
 */
const provider = new CertifiedProvider('http://localhost:5000/login/google/authorized');
before(() => provider.start());
after(() => provider.stop());

provider.accounts.set('ann', { email: 'ann@corp.test', email_verified: true, name: 'Ann Example' });
provider.accounts.set('bob', { email: 'bob@corp.test', email_verified: false, name: 'Bob' });
provider.accounts.set('cat', { email: 'cat@elsewhere.test', email_verified: true, name: 'Cat' });
provider.accounts.set('dan', { email: 'dan@corp.test', email_verified: true, name: 'Dan' });

/** Clicks the sign-in button, signs in at the provider as `account`, and returns the app's answer to the callback. */
async function signIn(c: TestClient, account: string) {
  const start = await c.get('/login/google');
  assert.equal(start.statusCode, 302, `GET /login/google answered ${start.statusCode}: ${start.body.slice(0, 200)}`);
  const back = await provider.signIn(String(start.headers.location), account);
  assert.equal(back.searchParams.get('error'), null, `the provider refused: ${back.searchParams.get('error_description')}`);
  return { back, res: await c.get(back.pathname + back.search) };
}

async function userRow(t: TestApp, email: string) {
  return t.database.db
    .selectFrom('chatbot_schema.app_user')
    .select(['txusername', 'txemail'])
    .where(sql<string>`lower(txemail)`, '=', email)
    .executeTakeFirst();
}

describe('a provider on its default settings (client registered with client_secret_basic)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env(BASIC_CLIENT));
  });
  after(() => t.close());

  test('the authorization request asks for no prompt the provider does not offer (select_account is for Google)', async () => {
    const start = await new TestClient(t.app).get('/login/google');
    const authorize = new URL(String(start.headers.location));
    const back = await provider.signIn(authorize.href, 'ann');
    assert.equal(back.searchParams.get('error'), null, `the provider refused: ${back.searchParams.get('error_description')}`);
    assert.ok(back.searchParams.get('code'));
    assert.equal(authorize.searchParams.get('prompt'), null);
  });

  test('the code is exchanged with client_secret_basic, the way the client is registered', async () => {
    const before = provider.tokenRequests.length;
    await signIn(new TestClient(t.app), 'dan');
    assert.deepEqual(provider.tokenRequests.slice(before), ['basic 200']);
  });

  test('a new user whose e-mail and name are only in UserInfo gets an account and is signed in; next time too', async () => {
    const c = new TestClient(t.app);
    const { res } = await signIn(c, 'ann');
    assert.equal(
      res.headers.location,
      '/chat',
      `landed on ${res.headers.location}: ${(await c.get(String(res.headers.location))).body.match(/alert[^>]*>([^<]*)/)?.[1]}`,
    );
    assert.deepEqual(await userRow(t, 'ann@corp.test'), { txusername: 'Ann Example', txemail: 'ann@corp.test' });
    const again = await signIn(new TestClient(t.app), 'ann');
    assert.equal(again.res.headers.location, '/chat');
  });

  test('an address the provider has not verified (in UserInfo) makes no account', async () => {
    const c = new TestClient(t.app);
    const { res } = await signIn(c, 'bob');
    assert.equal(res.statusCode, 303);
    assert.match((await c.get(String(res.headers.location))).body, /no verified e-mail address/);
    assert.equal(await userRow(t, 'bob@corp.test'), undefined);
  });
});

describe('OIDC_ALLOWED_DOMAINS with a provider that is not Google: the domain of the verified address', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env(BASIC_CLIENT, { OIDC_ALLOWED_DOMAINS: 'corp.test' }));
  });
  after(() => t.close());

  test('a verified address of the domain signs in; another domain, or an unverified address of it, is refused', async () => {
    assert.equal((await signIn(new TestClient(t.app), 'dan')).res.headers.location, '/chat');
    for (const account of ['cat', 'bob']) {
      const c = new TestClient(t.app);
      const { res } = await signIn(c, account);
      assert.match((await c.get(String(res.headers.location))).body, /This Corp SSO account is not from an organisation allowed on this server/);
    }
    assert.equal(await userRow(t, 'cat@elsewhere.test'), undefined);
  });
});

describe('the button and the older names', () => {
  test('OIDC_NAME names a plain button (no Google mark); the GOOGLE_* names still configure any provider', async () => {
    const named = await startTestApp(provider.env(BASIC_CLIENT));
    try {
      const page = (await named.app.inject('/login')).body;
      assert.match(page, /<a class="btn btn-outline-primary w-100 mb-3" href="\/login\/google">Sign in with Corp SSO<\/a>/);
      assert.doesNotMatch(page, /google-g\.svg|Sign in with Google/);
    } finally {
      await named.close();
    }
    const legacy = await startTestApp({ GOOGLE_ISSUER: provider.issuer, GOOGLE_CLIENT_ID: POST_CLIENT.id, GOOGLE_CLIENT_SECRET: POST_CLIENT.secret });
    try {
      assert.match((await legacy.app.inject('/login')).body, /Sign in with Google/);
      const { res } = await signIn(new TestClient(legacy.app), 'ann');
      assert.equal(res.headers.location, '/chat');
    } finally {
      await legacy.close();
    }
  });
});
