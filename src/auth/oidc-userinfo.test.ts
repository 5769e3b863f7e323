import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { TestProvider } from '../../test/google-provider.ts';
import { offersAccountChooser, tokenAuthMethod } from './google-client.ts';

/**
 * UserInfo is input like the ID token: its answer must be about the same person (`sub`), and its claims pass the same
 * checks (storable text, lengths, a real address, verified) before anything is stored. The loopback provider
 * (oauth2-mock-server) lets a test set what UserInfo answers; the certified provider's journey is
 * test/certified-provider.test.ts.
 */
const provider = new TestProvider();
before(() => provider.start());
after(() => provider.stop());

async function signIn(c: TestClient): Promise<LightMyRequestResponse> {
  const start = await c.get('/login/google');
  assert.equal(start.statusCode, 302);
  const back = new URL(await provider.authorize(String(start.headers.location)));
  return c.get(back.pathname + back.search);
}

const landedMessage = async (c: TestClient, res: LightMyRequestResponse) => {
  assert.equal(res.statusCode, 303);
  assert.match(String(res.headers.location), /^\/login/);
  return (await c.get(String(res.headers.location))).body;
};

const userCount = async (t: TestApp) => Number((await sql<{ n: string }>`select count(*) as n from chatbot_schema.app_user`.execute(t.database.db)).rows[0]?.n);

describe('UserInfo, when the ID token has no address', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(provider.env());
  });
  after(() => t.close());
  beforeEach(() => {
    provider.userinfo = undefined;
    provider.forgeNext = undefined;
  });

  test('its claims make the account; an ID token with the address is not followed by a UserInfo request', async () => {
    provider.claims = { sub: 'ui-1', email: undefined, email_verified: undefined, name: undefined };
    provider.userinfo = { sub: 'ui-1', email: 'ui1@example.com', email_verified: true, name: 'Una Info' };
    assert.equal((await signIn(new TestClient(t.app))).headers.location, '/chat');
    const row = await t.database.db
      .selectFrom('chatbot_schema.app_user')
      .select(['txusername', 'txemail'])
      .where('txemail', '=', 'ui1@example.com')
      .executeTakeFirst();
    assert.deepEqual(row, { txusername: 'Una Info', txemail: 'ui1@example.com' });
    const calls = provider.userinfoCalls;
    provider.claims = { sub: 'ui-2', email: 'ui2@example.com', email_verified: true, name: undefined };
    assert.equal((await signIn(new TestClient(t.app))).headers.location, '/chat');
    assert.equal(provider.userinfoCalls, calls);
  });

  test('an answer about another subject is refused: nothing of it is used', async () => {
    const before = await userCount(t);
    provider.claims = { sub: 'ui-3', email: undefined, email_verified: undefined };
    provider.userinfo = { sub: 'someone-else', email: 'victim@example.com', email_verified: true };
    const c = new TestClient(t.app);
    assert.match(await landedMessage(c, await signIn(c)), /sign-in did not complete/);
    assert.equal(await userCount(t), before);
  });

  test('hostile UserInfo claims get the ID token checks: no NUL, lone surrogate, non-address or unverified address is stored', async () => {
    const before = await userCount(t);
    const hostile: Array<Record<string, unknown>> = [
      { email: 'nul\u0000@example.com', email_verified: true },
      { email: 'half\ud800@example.com', email_verified: true },
      { email: `${'x'.repeat(300)}@example.com`, email_verified: true },
      { email: 'not an address', email_verified: true },
      { email: ['a@example.com'], email_verified: true },
      { email: 'unverified@example.com', email_verified: 'true' },
      { email: 'unverified@example.com' },
    ];
    for (const [i, claims] of hostile.entries()) {
      provider.claims = { sub: `ui-h${i}`, email: undefined, email_verified: undefined };
      provider.userinfo = { sub: `ui-h${i}`, ...claims };
      const c = new TestClient(t.app);
      assert.match(await landedMessage(c, await signIn(c)), /no verified e-mail address/, JSON.stringify(claims));
    }
    assert.equal(await userCount(t), before);
    // A name that cannot be stored is no name: the account is named after the address.
    provider.claims = { sub: 'ui-name', email: undefined, email_verified: undefined, name: undefined };
    provider.userinfo = { sub: 'ui-name', email: 'named@example.com', email_verified: true, name: 'Nina\u0000' };
    assert.equal((await signIn(new TestClient(t.app))).headers.location, '/chat');
    const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('txusername').where('txemail', '=', 'named@example.com').executeTakeFirst();
    assert.equal(row?.txusername, 'named');
  });
});

describe('what the app asks of a provider follows its discovery', () => {
  test('prompt=select_account: Google, and a provider that lists it; no one else', () => {
    assert.equal(offersAccountChooser('https://accounts.google.com', {} as never), true);
    assert.equal(offersAccountChooser('https://accounts.google.com/', {} as never), true);
    assert.equal(offersAccountChooser('https://sso.example.com', { issuer: 'x', prompt_values_supported: ['none', 'login', 'select_account'] } as never), true);
    assert.equal(offersAccountChooser('https://sso.example.com', { issuer: 'x', prompt_values_supported: ['none', 'login', 'consent'] } as never), false);
    assert.equal(offersAccountChooser('https://sso.example.com', { issuer: 'x' }), false);
  });

  test('client authentication: client_secret_basic unless discovery lists only client_secret_post', () => {
    assert.equal(tokenAuthMethod(undefined), 'client_secret_basic');
    assert.equal(tokenAuthMethod(['client_secret_post', 'client_secret_basic']), 'client_secret_basic');
    assert.equal(tokenAuthMethod(['client_secret_basic', 'private_key_jwt']), 'client_secret_basic');
    assert.equal(tokenAuthMethod(['private_key_jwt', 'client_secret_post']), 'client_secret_post');
    assert.equal(tokenAuthMethod(['none']), 'client_secret_basic');
  });
});
