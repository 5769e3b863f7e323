import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { currentCode, enrolThroughSettings, forgetLastStep, nextCode, recoveryCodesOnPage, secretOnPage } from '../../test/totp-helpers.ts';
import { totpSecretBox } from '../auth/totp-queries.ts';

let t: TestApp;
let n = 0;

before(async () => {
  t = await startTestApp();
  // The first account is the admin; the tests below are about ordinary users.
  await new TestClient(t.app).register({ email: 'first-admin@example.com' });
});
after(() => t.close());

async function signedIn(): Promise<{ c: TestClient; email: string }> {
  n += 1;
  const email = `s${n}@example.com`;
  const c = new TestClient(t.app);
  await c.register({ email });
  return { c, email };
}

const userRow = (email: string) => t.database.db.selectFrom('chatbot_schema.app_user').selectAll().where('txemail', '=', email).executeTakeFirstOrThrow();
const codeCount = async (email: string) => {
  const { idappuser } = await userRow(email);
  return (
    await t.database.db
      .selectFrom('chatbot_schema.recovery_code')
      .select('idrecovery_code')
      .where('idappuser', '=', idappuser)
      .where('dtused', 'is', null)
      .execute()
  ).length;
};
const wrongCode = (secret: string) => (currentCode(secret) === '000000' || nextCode(secret) === '000000' ? '999999' : '000000');

describe('enrolment', () => {
  test('generate shows a QR code and the secret; nothing changes at sign-in until a code confirms it', async () => {
    const { c, email } = await signedIn();
    assert.equal((await c.get('/2fa/qrcode.png')).statusCode, 404, 'no QR code without an enrolment in progress');
    await c.get('/settings/2fa');
    assert.equal((await c.post('/settings/2fa', { action: 'generate' })).statusCode, 303);
    const page = await c.get('/settings/2fa');
    assert.match(page.body, /<img src="\/2fa\/qrcode.png"/);
    const secret = secretOnPage(page.body);
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const qr = await c.get('/2fa/qrcode.png');
    assert.equal(qr.statusCode, 200);
    assert.equal(qr.headers['content-type'], 'image/png');
    assert.equal(qr.headers['cache-control'], 'no-store');
    assert.equal(qr.rawPayload.subarray(1, 4).toString(), 'PNG');
    const row = await userRow(email);
    assert.equal(row.is_2fa_enabled, false);
    assert.match(row.txtotp_pending_secret ?? '', /^v1\./);
    assert.ok(!JSON.stringify(row).includes(secret), 'the secret is not stored in the clear');
    // Another browser signs in with the password alone: the pending secret is not active.
    const other = new TestClient(t.app);
    assert.equal((await other.login(email)).headers.location, '/chat');
  });

  test('confirm: a wrong code is refused (400), a right one turns 2FA on and shows 10 codes once', async () => {
    const { c, email } = await signedIn();
    await c.get('/settings/2fa');
    await c.post('/settings/2fa', { action: 'generate' });
    const secret = secretOnPage((await c.get('/settings/2fa')).body);
    const wrong = await c.post('/settings/2fa', { action: 'confirm', otp_code: wrongCode(secret) });
    assert.equal(wrong.statusCode, 400);
    assert.equal((await userRow(email)).is_2fa_enabled, false);
    const ok = await c.post('/settings/2fa', { action: 'confirm', otp_code: currentCode(secret) });
    assert.equal(ok.statusCode, 200);
    const codes = recoveryCodesOnPage(ok.body);
    assert.equal(codes.length, 10);
    assert.match(ok.body, /download="parley-recovery-codes.txt" href="data:text\/plain;charset=utf-8,/);
    assert.match(ok.body, /data-copy-target="recovery-codes"/);
    assert.match(ok.body, /<script src="\/static\/build\/recovery-codes-[A-Z0-9]+\.mjs"/);
    const row = await userRow(email);
    assert.equal(row.is_2fa_enabled, true);
    assert.match(row.totp_secret ?? '', /^v1\./);
    assert.equal(totpSecretBox(t.config.APP_SECRET).decrypt(row.totp_secret ?? ''), secret);
    // Shown once: neither the secret nor the codes come back, and the QR code is gone.
    const later = await c.get('/settings/2fa');
    assert.ok(!later.body.includes(secret.slice(0, 8)));
    for (const code of codes) assert.ok(!later.body.includes(code));
    assert.match(later.body, /10 recovery codes left/);
    assert.equal((await c.get('/2fa/qrcode.png')).statusCode, 404);
    // Sign-in now asks for the code.
    const other = new TestClient(t.app);
    assert.equal((await other.login(email)).headers.location, '/login/2fa');
  });

  test('bad input is a 400 with a message, never a 500', async () => {
    const { c } = await signedIn();
    await c.get('/settings/2fa');
    for (const fields of [{}, { action: 'explode' }, { action: 'confirm' }, { action: 'disable' }, { action: 'regenerate', otp_code: '1'.repeat(100) }]) {
      const res = await c.post('/settings/2fa', fields);
      assert.equal(res.statusCode, 400, JSON.stringify(fields));
    }
  });
});

describe('changes to an active 2FA need proof', () => {
  test('disable: refused without a code and with a wrong one; with a code it clears everything and ends the other sessions', async () => {
    const { c, email } = await signedIn();
    const { secret } = await enrolThroughSettings(c);
    const elsewhere = new TestClient(t.app);
    await elsewhere.login(email);
    await elsewhere.get('/login/2fa');
    assert.equal((await elsewhere.post('/login/2fa', { otp_code: nextCode(secret) })).statusCode, 303);
    assert.equal((await elsewhere.get('/chat')).statusCode, 200);
    await forgetLastStep(t.database.db, email);

    assert.equal((await c.post('/settings/2fa', { action: 'disable' })).statusCode, 400);
    assert.equal((await c.post('/settings/2fa', { action: 'disable', otp_code: wrongCode(secret) })).statusCode, 401);
    assert.equal((await userRow(email)).is_2fa_enabled, true);
    const off = await c.post('/settings/2fa', { action: 'disable', otp_code: currentCode(secret) });
    assert.equal(off.statusCode, 303);
    const row = await userRow(email);
    assert.deepEqual([row.is_2fa_enabled, row.totp_secret, row.totp_last_step], [false, null, null]);
    assert.equal(await codeCount(email), 0);
    assert.equal((await elsewhere.get('/chat')).headers.location, '/login?next=%2Fchat', 'the other session ended');
    assert.equal((await c.get('/chat')).statusCode, 200, 'this session stays');
  });

  test('regenerate: needs proof; with a recovery code, 10 new codes replace the old ones', async () => {
    const { c, email } = await signedIn();
    const { codes } = await enrolThroughSettings(c);
    await c.get('/settings/2fa');
    assert.equal((await c.post('/settings/2fa', { action: 'regenerate' })).statusCode, 400);
    const res = await c.post('/settings/2fa', { action: 'regenerate', otp_code: codes[0] });
    assert.equal(res.statusCode, 200);
    const fresh = recoveryCodesOnPage(res.body);
    assert.equal(fresh.length, 10);
    assert.equal(await codeCount(email), 10);
    await c.get('/settings/2fa');
    assert.equal((await c.post('/settings/2fa', { action: 'regenerate', otp_code: codes[1] })).statusCode, 401, 'old codes no longer work');
    assert.equal((await c.post('/settings/2fa', { action: 'regenerate', otp_code: fresh[0] })).statusCode, 200);
  });

  test('re-enrol: needs proof; the old authenticator keeps working until the new one is confirmed', async () => {
    const { c, email } = await signedIn();
    const { secret } = await enrolThroughSettings(c);
    await c.get('/settings/2fa');
    assert.equal((await c.post('/settings/2fa', { action: 'generate' })).statusCode, 400);
    assert.equal((await userRow(email)).txtotp_pending_secret, null);
    assert.equal((await c.post('/settings/2fa', { action: 'generate', otp_code: nextCode(secret) })).statusCode, 303);
    const page = await c.get('/settings/2fa');
    const newSecret = secretOnPage(page.body);
    assert.notEqual(newSecret, secret);
    assert.equal(box().decrypt((await userRow(email)).totp_secret ?? ''), secret, 'still the old secret');
    const ok = await c.post('/settings/2fa', { action: 'confirm', otp_code: currentCode(newSecret) });
    assert.equal(ok.statusCode, 200);
    assert.equal(box().decrypt((await userRow(email)).totp_secret ?? ''), newSecret);
  });

  test('wrong proofs count toward the same lock as the second step', async () => {
    const { c, email } = await signedIn();
    const { secret } = await enrolThroughSettings(c);
    await c.get('/settings/2fa');
    for (let i = 0; i < 5; i++) assert.equal((await c.post('/settings/2fa', { action: 'disable', otp_code: wrongCode(secret) })).statusCode, 401);
    const locked = await c.post('/settings/2fa', { action: 'disable', otp_code: nextCode(secret) });
    assert.equal(locked.statusCode, 429);
    assert.equal((await userRow(email)).is_2fa_enabled, true);
    const pending = new TestClient(t.app);
    await pending.login(email);
    await pending.get('/login/2fa');
    assert.equal((await pending.post('/login/2fa', { otp_code: nextCode(secret) })).statusCode, 429);
  });
});

const box = () => totpSecretBox(t.config.APP_SECRET);

describe('REQUIRE_2FA_FOR_ADMINS', () => {
  test('on: an admin without 2FA is sent to enrolment before any admin page (JSON: 403); with 2FA, admitted', async () => {
    const strict = await startTestApp({ REQUIRE_2FA_FOR_ADMINS: 'true' });
    try {
      const admin = new TestClient(strict.app);
      await admin.register({ email: 'boss@example.com' });
      const page = await admin.get('/admin/models');
      assert.equal(page.statusCode, 303);
      assert.equal(page.headers.location, '/settings/2fa');
      const json = await admin.get('/admin/models', { accept: 'application/json' });
      assert.equal(json.statusCode, 403);
      assert.match(JSON.parse(json.body).error, /two-factor/);
      assert.equal((await admin.get('/chat')).statusCode, 200, 'other pages are not affected');
      await enrolThroughSettings(admin);
      assert.equal((await admin.get('/admin/models')).statusCode, 200);
      // An ordinary user still gets 403, not the enrolment redirect.
      const user = new TestClient(strict.app);
      await user.register({ email: 'plain@example.com' });
      assert.equal((await user.get('/admin/models')).statusCode, 403);
    } finally {
      await strict.close();
    }
  });

  test('off (default): an admin without 2FA reaches admin pages', async () => {
    const admin = new TestClient(t.app);
    await admin.login('first-admin@example.com');
    assert.equal((await admin.get('/admin/models')).statusCode, 200);
  });
});
