import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp } from './app.ts';
import { TestClient } from './client.ts';
import { TestProvider } from './google-provider.ts';
import { enrolThroughSettings, nextCode } from './totp-helpers.ts';

/**
 * TOTP_FOR_OAUTH: whether a Google sign-in of an account with 2FA also passes the second step. Real Google flow
 * against the loopback OpenID provider (test/google-provider.ts), as in src/auth/google-auth.test.ts.
 */
const provider = new TestProvider();
before(() => provider.start());
after(() => provider.stop());

async function googleSignIn(c: TestClient): Promise<LightMyRequestResponse> {
  const start = await c.get('/login/google');
  assert.equal(start.statusCode, 302, start.body.slice(0, 200));
  const back = new URL(await provider.authorize(String(start.headers.location)));
  return c.get(back.pathname + back.search);
}

async function googleUserWith2fa(env: Record<string, string>, email: string) {
  const t = await startTestApp({ ...provider.env(), ...env });
  provider.claims = { email, email_verified: true, sub: `sub-${email}` };
  const c = new TestClient(t.app);
  const first = await googleSignIn(c);
  assert.equal(first.headers.location, '/chat', 'the first Google sign-in makes the account');
  const { secret } = await enrolThroughSettings(c);
  return { t, secret };
}

test('TOTP_FOR_OAUTH=true: a Google sign-in of an account with 2FA continues at the second step, then signs in as Google', async () => {
  const { t, secret } = await googleUserWith2fa({ TOTP_FOR_OAUTH: 'true' }, 'gina@example.com');
  try {
    const c = new TestClient(t.app);
    const res = await googleSignIn(c);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login/2fa');
    assert.equal((await c.get('/chat')).headers.location, '/login/2fa', 'not signed in yet');
    await c.get('/login/2fa');
    const done = await c.post('/login/2fa', { otp_code: nextCode(secret) });
    assert.equal(done.headers.location, '/chat');
    assert.equal((await c.get('/chat')).statusCode, 200);
    const sessions = await t.database.db.selectFrom('chatbot_schema.session').select(['txsign_in_method', 'is_second_factor_pending']).execute();
    const methods = sessions.map((s) => `${s.txsign_in_method}:${s.is_second_factor_pending}`).sort();
    assert.deepEqual(methods, ['google:false', 'google:false'], 'the enrolling session and the new one, both Google, none pending');
  } finally {
    await t.close();
  }
});

test('TOTP_FOR_OAUTH=false (default): a Google sign-in skips the code', async () => {
  const { t } = await googleUserWith2fa({}, 'gus@example.com');
  try {
    const c = new TestClient(t.app);
    assert.equal((await googleSignIn(c)).headers.location, '/chat');
    assert.equal((await c.get('/chat')).statusCode, 200);
  } finally {
    await t.close();
  }
});
