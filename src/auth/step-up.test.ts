import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { currentCode, enrolThroughSettings, forgetLastStep, secretOnPage } from '../../test/totp-helpers.ts';

/**
 * Issue 16 item 15: turning 2FA on needs a fresh proof (decision record 011). A sign-in is one; after
 * STEP_UP_WINDOW_MS the "confirm it's you" form asks for the password (a code when the account has 2FA; a new
 * sign-in when it has neither) and sends the person back.
 */
let t: TestApp;
let n = 0;
before(async () => {
  t = await startTestApp();
  await new TestClient(t.app).register({ email: 'first-admin@example.com' });
});
after(() => t.close());

async function signedIn(): Promise<{ c: TestClient; email: string }> {
  const email = `up${++n}@example.com`;
  const c = new TestClient(t.app);
  await c.register({ email });
  return { c, email };
}

/** As if the session's last proof were an hour old (the window is minutes). */
const ageProof = (email: string) =>
  sql`UPDATE chatbot_schema.session SET dtlast_proof = now() - interval '1 hour'
      WHERE idappuser = (SELECT idappuser FROM chatbot_schema.app_user WHERE txemail = ${email})`.execute(t.database.db);
const pendingSecret = async (email: string) =>
  (await t.database.db.selectFrom('chatbot_schema.app_user').select('txtotp_pending_secret').where('txemail', '=', email).executeTakeFirstOrThrow())
    .txtotp_pending_secret;

describe('2FA enrolment', () => {
  test('right after sign-in: no extra step (the sign-in is the proof)', async () => {
    const { c } = await signedIn();
    await enrolThroughSettings(c);
  });

  test('with an old proof: setting up goes to "confirm it\'s you", nothing is started; the password brings the person back and it works', async () => {
    const { c, email } = await signedIn();
    await ageProof(email);
    const page = await c.get('/settings/2fa');
    assert.match(page.body, /data-testid="step-up-note"/);
    const refused = await c.post('/settings/2fa', { action: 'generate' });
    assert.equal(refused.statusCode, 303);
    assert.equal(refused.headers.location, '/settings/confirm?next=%2Fsettings%2F2fa');
    assert.equal(await pendingSecret(email), null, 'no enrolment started');

    const form = await c.get('/settings/confirm?next=%2Fsettings%2F2fa');
    assert.equal(form.statusCode, 200);
    assert.match(form.body, /name="password"/);
    const wrong = await c.post('/settings/confirm?next=%2Fsettings%2F2fa', { password: 'not my password at all' });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /not your password/);
    const ok = await c.post('/settings/confirm?next=%2Fsettings%2F2fa', { password: 'correct horse battery staple' });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/settings/2fa');
    assert.doesNotMatch((await c.get('/settings/2fa')).body, /data-testid="step-up-note"/);
    await enrolThroughSettings(c);
  });

  test('confirming a started enrolment also needs a recent proof', async () => {
    const { c, email } = await signedIn();
    await c.get('/settings/2fa');
    await c.post('/settings/2fa', { action: 'generate' });
    const secret = secretOnPage((await c.get('/settings/2fa')).body);
    await ageProof(email);
    const res = await c.post('/settings/2fa', { action: 'confirm', otp_code: currentCode(secret) });
    assert.equal(res.statusCode, 303);
    assert.match(String(res.headers.location), /^\/settings\/confirm\?next=/);
    const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('is_2fa_enabled').where('txemail', '=', email).executeTakeFirstOrThrow();
    assert.equal(row.is_2fa_enabled, false);
  });

  test("a started enrolment's secret (text and QR code) is not shown to a session without a recent proof", async () => {
    const { c, email } = await signedIn();
    await c.get('/settings/2fa');
    await c.post('/settings/2fa', { action: 'generate' });
    const secret = secretOnPage((await c.get('/settings/2fa')).body);
    assert.equal((await c.get('/2fa/qrcode.png')).statusCode, 200);
    await ageProof(email);
    const page = await c.get('/settings/2fa');
    assert.equal(page.statusCode, 200);
    assert.doesNotMatch(page.body, /data-testid="totp-secret"/, 'the pending secret is not on the page');
    assert.ok(!page.body.includes(secret.slice(0, 4)));
    assert.match(page.body, /data-testid="step-up-note"/);
    const qr = await c.get('/2fa/qrcode.png');
    assert.equal(qr.statusCode, 303);
    assert.match(String(qr.headers.location), /^\/settings\/confirm\?next=/);
  });

  test('JSON clients get 403 with where to confirm, not a redirect', async () => {
    const { c, email } = await signedIn();
    await ageProof(email);
    await c.get('/settings/2fa');
    const res = await c.postJson('/settings/2fa', { action: 'generate' }, { accept: 'application/json' });
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /\/settings\/confirm/);
  });
});

describe('the confirm form asks what the account has', () => {
  test('an account with 2FA: a current code (a password field is not offered)', async () => {
    const { c, email } = await signedIn();
    const { secret } = await enrolThroughSettings(c);
    await ageProof(email);
    const form = await c.get('/settings/confirm');
    assert.match(form.body, /name="otp_code"/);
    assert.doesNotMatch(form.body, /name="password"/);
    await forgetLastStep(t.database.db, email);
    const ok = await c.post('/settings/confirm', { otp_code: currentCode(secret) });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/settings');
  });

  test('an account without a password (Google only): "sign in again" signs out and comes back through /login', async () => {
    const email = `google-only${++n}@example.com`;
    const c = new TestClient(t.app);
    await c.register({ email });
    await t.database.db.updateTable('chatbot_schema.app_user').set({ password: null }).where('txemail', '=', email).execute();
    const form = await c.get('/settings/confirm?next=%2Fsettings%2F2fa');
    assert.match(form.body, /no password and no two-factor authentication/);
    assert.match(form.body, /Sign in again/);
    const res = await c.post('/settings/confirm?next=%2Fsettings%2F2fa', {});
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login?next=%2Fsettings%2F2fa');
    assert.equal((await c.get('/settings')).statusCode, 303, 'signed out');
  });

  test('bad input is a 4xx with a message, never a 500', async () => {
    const { c, email } = await signedIn();
    await ageProof(email);
    await c.get('/settings/confirm');
    assert.equal((await c.post('/settings/confirm', {})).statusCode, 400);
    assert.equal((await c.post('/settings/confirm', { password: 'x'.repeat(2000) })).statusCode, 400);
  });
});
