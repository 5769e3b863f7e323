import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { addPasskey, assertWith, fetchOptions, flashAfter, newAuthenticator, signInWithPasskey } from '../../test/passkey-helpers.ts';
import type { CreationOptions } from '../../test/soft-authenticator.ts';
import { enrolThroughSettings } from '../../test/totp-helpers.ts';
import { createUser } from '../users/user-queries.ts';
import { PASSKEYS_PER_ACCOUNT } from './passkey-queries.ts';
import { hashPassword } from './passwords.ts';

/**
 * Passkeys through the app (issue 20, decision record 017), with a software authenticator (test/soft-authenticator.ts)
 * making real registration and assertion responses, so @simplewebauthn/server verifies them for real and the rules
 * that are ours (challenge, counter, user handle, owner, deactivation, step-up) are tested without a browser.
 */
let t: TestApp;
let n = 0;
/** The first admin's passkey (REQUIRE_2FA_FOR_ADMINS is on in this file: a passkey meets it). */
const adminKey = newAuthenticator();
before(async () => {
  t = await startTestApp({ REQUIRE_2FA_FOR_ADMINS: 'true' });
  const admin = new TestClient(t.app);
  await admin.register({ email: 'first-admin@example.com' });
  await addPasskey(admin, adminKey, 'Admin key');
});
after(() => t.close());

let passwordHash = '';
/** A new account, signed in with its password (made directly: the registration form allows 20 accounts an hour per address). */
async function signedIn(): Promise<{ c: TestClient; email: string }> {
  const email = `pk${++n}@example.com`;
  passwordHash ||= await hashPassword(DEFAULT_PASSWORD);
  await createUser(t.database.db, { username: `pk${n}`, email, passwordHash });
  const c = new TestClient(t.app);
  assert.equal((await c.login(email)).headers.location, '/chat');
  return { c, email };
}

const idOf = async (email: string) =>
  (await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', email).executeTakeFirstOrThrow()).idappuser;
const ageProof = (email: string) =>
  sql`UPDATE chatbot_schema.session SET dtlast_proof = now() - interval '1 hour'
      WHERE idappuser = (SELECT idappuser FROM chatbot_schema.app_user WHERE txemail = ${email})`.execute(t.database.db);
const passkeyCount = async (email: string) =>
  Number(
    (
      await sql<{
        n: string;
      }>`SELECT count(*) AS n FROM chatbot_schema.passkey WHERE idappuser = (SELECT idappuser FROM chatbot_schema.app_user WHERE txemail = ${email})`.execute(
        t.database.db,
      )
    ).rows[0]?.n,
  );
const sessionMethods = async (email: string) =>
  (
    await t.database.db
      .selectFrom('chatbot_schema.session as s')
      .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 's.idappuser')
      .select(['s.txsign_in_method as method', 's.is_second_factor_pending as pending'])
      .where('u.txemail', '=', email)
      .execute()
  ).map((r) => `${r.method}${r.pending ? ' (pending)' : ''}`);

describe('registering', () => {
  test('adds a resident, user-verified passkey; the list shows its name, device-bound or synced; a second registration excludes it', async () => {
    const { c, email } = await signedIn();
    const laptop = newAuthenticator();
    assert.match(await flashAfter(c, await addPasskey(c, laptop, 'Work laptop')), /Passkey “Work laptop” added/);
    assert.match(await flashAfter(c, await addPasskey(c, newAuthenticator({ synced: true }), 'Phone')), /Passkey “Phone” added/);
    const page = await c.get('/settings/passkeys');
    assert.match(page.body, /Work laptop<\/strong> <span class="badge text-bg-secondary"[^>]*>this device only/);
    assert.match(page.body, /Phone<\/strong> <span class="badge text-bg-info"[^>]*>synced/);
    assert.equal(await passkeyCount(email), 2);

    const { options } = await fetchOptions<CreationOptions & { authenticatorSelection: Record<string, unknown> }>(c, '/settings/passkeys/options');
    assert.deepEqual(options.authenticatorSelection, { residentKey: 'required', requireResidentKey: true, userVerification: 'required' });
    assert.deepEqual(options.excludeCredentials?.map((x) => x.id).sort(), (await credentialIds(email)).sort());
    assert.throws(() => laptop.register(options), /excluded/, 'the authenticator refuses a second credential');
  });

  test('the same credential posted twice is refused; a registration without user verification is refused', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await c.get('/settings/passkeys');
    const { options } = await fetchOptions<CreationOptions>(c, '/settings/passkeys/options');
    const response = JSON.stringify(auth.register(options));
    assert.match(await flashAfter(c, await c.post('/settings/passkeys', { passkey_name: 'A', credential: response })), /added/);
    // The challenge was taken: the same response again finds none.
    assert.match(await flashAfter(c, await c.post('/settings/passkeys', { passkey_name: 'B', credential: response })), /expired or was already used/);
    assert.equal(await passkeyCount(email), 1);
  });

  test(`at most ${PASSKEYS_PER_ACCOUNT} per account`, async () => {
    const { c, email } = await signedIn();
    for (let i = 0; i < PASSKEYS_PER_ACCOUNT; i++) await addPasskey(c, newAuthenticator(), `Key ${i}`);
    assert.equal(await passkeyCount(email), PASSKEYS_PER_ACCOUNT);
    assert.match((await c.get('/settings/passkeys')).body, /data-testid="passkey-limit"/);
    const { res } = await fetchOptions(c, '/settings/passkeys/options');
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /most an account may have/);
  });

  test('without a recent proof the options are refused (403 naming the confirm form) and the page says so', async () => {
    const { c, email } = await signedIn();
    await ageProof(email);
    assert.match((await c.get('/settings/passkeys')).body, /data-testid="step-up-note"/);
    const { res } = await fetchOptions(c, '/settings/passkeys/options');
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /\/settings\/confirm/);
    const posted = await c.post('/settings/passkeys', { passkey_name: 'x', credential: '{}' });
    assert.equal(posted.headers.location, '/settings/confirm?next=%2Fsettings%2Fpasskeys');
  });

  test('a malformed credential field is a 400 with a reason, not a 500', async () => {
    const { c } = await signedIn();
    await c.get('/settings/passkeys');
    for (const credential of ['not json', '{}', JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: {} }), 'x'.repeat(50_000)]) {
      const res = await c.post('/settings/passkeys', { passkey_name: 'x', credential });
      assert.equal(res.statusCode, 400, credential.slice(0, 40));
    }
    const blank = await c.post('/settings/passkeys', { passkey_name: '  ', credential: '{}' });
    assert.equal(blank.statusCode, 400);
    assert.match(blank.body, /Give the passkey a name/);
  });
});

async function credentialIds(email: string): Promise<string[]> {
  return (
    await t.database.db
      .selectFrom('chatbot_schema.passkey as p')
      .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'p.idappuser')
      .select('p.txcredential_id as id')
      .where('u.txemail', '=', email)
      .execute()
  ).map((r) => r.id);
}

describe('signing in with a passkey', () => {
  test('is a whole sign-in (no TOTP step even with 2FA on): a new session of method passkey, last sign-in set, last used set', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    await enrolThroughSettings(c);
    await c.post('/logout');
    await t.database.db.updateTable('chatbot_schema.app_user').set({ dtlast_login: null }).where('txemail', '=', email).execute();

    const fresh = new TestClient(t.app);
    const res = await signInWithPasskey(fresh, auth);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    assert.equal((await fresh.get('/chat')).statusCode, 200);
    assert.deepEqual(await sessionMethods(email), ['passkey']);
    const row = await t.database.db
      .selectFrom('chatbot_schema.app_user as u')
      .innerJoin('chatbot_schema.passkey as p', 'p.idappuser', 'u.idappuser')
      .select(['u.dtlast_login', 'p.dtlast_used', 'p.ncounter'])
      .where('u.txemail', '=', email)
      .executeTakeFirstOrThrow();
    assert.ok(row.dtlast_login && row.dtlast_used);
    assert.equal(Number(row.ncounter), 1);
  });

  test('the challenge is single-use, bound to the browser, and expires', async () => {
    const { c } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    await c.post('/logout');

    // Replayed: the same assertion a second time finds no challenge.
    const a = new TestClient(t.app);
    await a.get('/login');
    const { options } = await fetchOptions<{ challenge: string }>(a, '/login/passkey/options');
    const answer = JSON.stringify(auth.assert(options));
    const first = await a.post('/login/passkey', { credential: answer });
    assert.equal(first.headers.location, '/chat');
    const replayer = new TestClient(t.app);
    await replayer.get('/login');
    await fetchOptions(replayer, '/login/passkey/options'); // a challenge of its own, not the one signed
    assert.match(await flashAfter(replayer, await replayer.post('/login/passkey', { credential: answer })), /could not be verified/);

    // Another browser's challenge: b signs a's challenge; a's is bound to a's cookie.
    const b = new TestClient(t.app);
    const other = new TestClient(t.app);
    await b.get('/login');
    await other.get('/login');
    const { options: forOther } = await fetchOptions<{ challenge: string }>(other, '/login/passkey/options');
    assert.match(await flashAfter(b, await b.post('/login/passkey', { credential: JSON.stringify(auth.assert(forOther)) })), /expired or was already used/);

    // Expired.
    const late = new TestClient(t.app);
    await late.get('/login');
    const { options: old } = await fetchOptions<{ challenge: string }>(late, '/login/passkey/options');
    await sql`UPDATE chatbot_schema.webauthn_challenge SET dtexpires = now() - interval '1 second' WHERE txchallenge = ${old.challenge}`.execute(t.database.db);
    assert.match(await flashAfter(late, await late.post('/login/passkey', { credential: JSON.stringify(auth.assert(old)) })), /expired or was already used/);
  });

  test('user verification is required', async () => {
    const { c } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    const d = new TestClient(t.app);
    assert.match(await flashAfter(d, await signInWithPasskey(d, auth, { userVerified: false })), /could not be verified/);
  });

  test('a counter that goes backwards is refused and audited as a possible clone; counters that stay at zero are fine', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    const clone = auth.clone();
    assert.equal((await signInWithPasskey(new TestClient(t.app), auth)).headers.location, '/chat'); // counter 1
    assert.equal((await signInWithPasskey(new TestClient(t.app), auth)).headers.location, '/chat'); // counter 2
    const d = new TestClient(t.app);
    const refused = await signInWithPasskey(d, clone); // the copy says 1
    assert.match(await flashAfter(d, refused), /signature counter went backwards/);
    const audit = await t.database.db
      .selectFrom('chatbot_schema.admin_audit')
      .select(['txaction', 'jsdetails', 'idtarget'])
      .where('txaction', '=', 'passkey-counter-regressed')
      .where('idtarget', '=', await idOf(email))
      .execute();
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0]?.jsdetails, { name: 'Laptop', counter: 1, stored: 2 });

    const synced = newAuthenticator({ synced: true, counterStep: 0 });
    await addPasskey(c, synced, 'Synced');
    for (let i = 0; i < 2; i++) {
      const credentialId = synced.credentialId();
      assert.equal((await signInWithPasskey(new TestClient(t.app), synced, { credentialId })).headers.location, '/chat');
    }
  });

  test("the assertion's user handle must be the credential owner's", async () => {
    const { c: alice } = await signedIn();
    const { c: bob, email: bobEmail } = await signedIn();
    const aliceKey = newAuthenticator();
    await addPasskey(alice, aliceKey);
    await addPasskey(bob, newAuthenticator());
    const bobHandle = (
      await t.database.db.selectFrom('chatbot_schema.app_user').select('txwebauthn_user_id').where('txemail', '=', bobEmail).executeTakeFirstOrThrow()
    ).txwebauthn_user_id;
    assert.ok(bobHandle);
    for (const userHandle of [bobHandle, null]) {
      const d = new TestClient(t.app);
      const res = await signInWithPasskey(d, aliceKey, { userHandle });
      assert.match(await flashAfter(d, res), /could not be verified/);
      assert.match(String((await d.get('/chat')).headers.location), /^\/login/, 'nobody signed in');
    }
  });

  test('a deactivated account is refused, told so after the passkey; a wrong origin is refused', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('txemail', '=', email).execute();
    const d = new TestClient(t.app);
    assert.match(await flashAfter(d, await signInWithPasskey(d, auth)), /deactivated/);
    assert.match(String((await d.get('/chat')).headers.location), /^\/login/);
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: true }).where('txemail', '=', email).execute();
    const e = new TestClient(t.app);
    assert.match(await flashAfter(e, await signInWithPasskey(e, auth, { origin: 'https://evil.example' })), /could not be verified/);
  });

  test('a removed passkey signs nobody in', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    await t.database.db
      .deleteFrom('chatbot_schema.passkey')
      .where('idappuser', '=', await idOf(email))
      .execute();
    const d = new TestClient(t.app);
    assert.match(await flashAfter(d, await signInWithPasskey(d, auth)), /not registered here/);
  });
});

describe('as a second factor', () => {
  test('a password sign-in of an account with a passkey (no TOTP) stops at /login/2fa, which offers only the passkey; it completes the sign-in', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth);
    await c.post('/logout');
    const d = new TestClient(t.app);
    const res = await d.login(email);
    assert.equal(res.headers.location, '/login/2fa');
    const page = await d.get('/login/2fa');
    assert.match(page.body, /data-action="passkey-second-factor"/);
    assert.doesNotMatch(page.body, /name="otp_code"/);
    const done = await assertWith(d, auth, '/login/2fa/passkey/options', '/login/2fa/passkey');
    assert.equal(done.headers.location, '/chat');
    assert.deepEqual(await sessionMethods(email), ['password']);
    assert.equal((await d.get('/chat')).statusCode, 200);
  });

  test("another account's passkey never completes this account's second step", async () => {
    const { c: alice } = await signedIn();
    const { c: bob, email: bobEmail } = await signedIn();
    const aliceKey = newAuthenticator();
    await addPasskey(alice, aliceKey);
    await addPasskey(bob, newAuthenticator());
    await bob.post('/logout');
    const d = new TestClient(t.app);
    await d.login(bobEmail);
    await d.get('/login/2fa');
    const res = await assertWith(d, aliceKey, '/login/2fa/passkey/options', '/login/2fa/passkey');
    assert.match(await flashAfter(d, res), /belongs to another account/);
    assert.deepEqual(await sessionMethods(bobEmail), ['password (pending)']);
  });

  test('REQUIRE_2FA_FOR_ADMINS is met by a passkey alone', async () => {
    const { c, email } = await signedIn();
    await t.database.db
      .insertInto('chatbot_schema.user_role')
      .values({ idappuser: await idOf(email), idrole: 1 })
      .execute();
    assert.equal((await c.get('/admin/users')).headers.location, '/settings/2fa', 'without a factor the admin is sent to set one up');
    await addPasskey(c, newAuthenticator());
    assert.equal((await c.get('/admin/users')).statusCode, 200);
  });

  test('with TOTP too, the second step offers both', async () => {
    const { c, email } = await signedIn();
    await addPasskey(c, newAuthenticator());
    await enrolThroughSettings(c);
    await c.post('/logout');
    const d = new TestClient(t.app);
    await d.login(email);
    const page = await d.get('/login/2fa');
    assert.match(page.body, /data-action="passkey-second-factor"/);
    assert.match(page.body, /name="otp_code"/);
  });
});

describe('removing and renaming', () => {
  test('rename needs no proof; remove needs a recent one, and a passkey gives it at the confirm form', async () => {
    const { c, email } = await signedIn();
    const auth = newAuthenticator();
    await addPasskey(c, auth, 'Old name');
    const [id] = (
      await t.database.db
        .selectFrom('chatbot_schema.passkey')
        .select('idpasskey')
        .where('idappuser', '=', await idOf(email))
        .execute()
    ).map((r) => r.idpasskey);
    await ageProof(email);
    assert.match(await flashAfter(c, await c.post(`/settings/passkeys/${id}/rename`, { passkey_name: 'New name' })), /renamed to “New name”/);
    const refused = await c.post(`/settings/passkeys/${id}/remove`);
    assert.equal(refused.headers.location, '/settings/confirm?next=%2Fsettings%2Fpasskeys');
    assert.equal(await passkeyCount(email), 1);

    // A passkey-only account (no TOTP) confirms with its passkey, not its password.
    const confirm = await c.get('/settings/confirm?next=%2Fsettings%2Fpasskeys');
    assert.match(confirm.body, /data-action="passkey-step-up"/);
    assert.doesNotMatch(confirm.body, /name="password"/);
    const proved = await assertWith(c, auth, '/settings/confirm/passkey/options', '/settings/confirm/passkey?next=%2Fsettings%2Fpasskeys');
    assert.equal(proved.headers.location, '/settings/passkeys');
    assert.match(await flashAfter(c, await c.post(`/settings/passkeys/${id}/remove`)), /Passkey “New name” removed/);
    assert.equal(await passkeyCount(email), 0);
  });

  test("one's own passkeys only: another account's id is a 404", async () => {
    const { c: alice, email } = await signedIn();
    await addPasskey(alice, newAuthenticator());
    const [id] = (
      await t.database.db
        .selectFrom('chatbot_schema.passkey')
        .select('idpasskey')
        .where('idappuser', '=', await idOf(email))
        .execute()
    ).map((r) => r.idpasskey);
    const { c: mallory } = await signedIn();
    await mallory.get('/settings/passkeys');
    assert.equal((await mallory.post(`/settings/passkeys/${id}/remove`)).statusCode, 404);
    assert.equal((await mallory.post(`/settings/passkeys/${id}/rename`, { passkey_name: 'mine' })).statusCode, 404);
    assert.equal(await passkeyCount(email), 1);
  });

  test('an admin sees the count and removes them (audited, signed out); reset-2fa removes them too', async () => {
    const { c, email } = await signedIn();
    await addPasskey(c, newAuthenticator());
    await addPasskey(c, newAuthenticator(), 'Second');
    const id = await idOf(email);
    const admin = new TestClient(t.app);
    assert.equal((await signInWithPasskey(admin, adminKey)).headers.location, '/chat');
    const page = await admin.get(`/admin/users/${id}`);
    assert.match(page.body, /data-testid="passkey-count">2</);
    assert.match(await flashAfter(admin, await admin.post(`/admin/users/${id}/remove-passkeys`)), /2 passkeys of .* removed/);
    assert.equal(await passkeyCount(email), 0);
    assert.match(String((await c.get('/chat')).headers.location), /^\/login/, 'signed out');
    const audit = await t.database.db
      .selectFrom('chatbot_schema.admin_audit')
      .select('jsdetails')
      .where('txaction', '=', 'remove-passkeys')
      .where('idtarget', '=', id)
      .execute();
    assert.deepEqual(
      audit.map((r) => r.jsdetails),
      [{ count: 2 }],
    );

    const again = new TestClient(t.app);
    await again.login(email);
    await addPasskey(again, newAuthenticator());
    await admin.get(`/admin/users/${id}`);
    await admin.post(`/admin/users/${id}/reset-2fa`);
    assert.equal(await passkeyCount(email), 0);
  });
});
