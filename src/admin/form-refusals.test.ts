import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { createSession } from '../auth/sessions.ts';
import { createUser, grantAdmin } from '../users/user-queries.ts';

/**
 * Issue 16 item 5: a refused user-management form answers 4xx with its own page again, the message beside the control
 * that was used and what was ticked or chosen kept, never the dead-end "Request refused … Go to the start page".
 */
let t: TestApp;
let n = 0;
let admin: TestClient;
let adminId: number;

before(async () => {
  t = await startTestApp();
  adminId = (await makeUser('Ada Admin', true)).id;
  admin = new TestClient(t.app);
  admin.cookies.set('parley_session', await createSession(t.database.db, adminId, {}));
  assert.equal((await admin.get('/admin/users')).statusCode, 200);
});
after(async () => {
  await t.close();
});

async function makeUser(username: string, isAdmin = false): Promise<{ id: number; username: string; email: string }> {
  n++;
  const email = `refusal${n}@example.com`;
  const { id } = await createUser(t.database.db, { username, email, passwordHash: 'x' });
  if (isAdmin) await grantAdmin(t.database.db, id);
  return { id, username, email };
}

/** The text of the element with this id (its message), or undefined when the page has none. */
function messageById(body: string, id: string): string | undefined {
  const m = new RegExp(`<[^>]* id="${id}"[^>]*>([^<]*)<`).exec(body);
  return m?.[1];
}

function assertNoDeadEnd(res: LightMyRequestResponse): void {
  assert.doesNotMatch(res.body, /Go to the start page/, 'not the dead-end error page');
  assert.doesNotMatch(res.body, /<title>Request refused/);
}

async function postForm(url: string, fields: [string, string][]): Promise<LightMyRequestResponse> {
  const form = new URLSearchParams([['_csrf', admin.csrf], ...fields]);
  return t.app.inject({
    method: 'POST',
    url,
    payload: form.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
  });
}

const isActive = async (id: number) =>
  (await t.database.db.selectFrom('chatbot_schema.app_user').select('is_active').where('idappuser', '=', id).executeTakeFirstOrThrow()).is_active;

describe('the user list: bulk actions', () => {
  test('an empty list of ids (a JSON body can send one) is "select at least one user", not a 500', async () => {
    const res = await admin.postJson('/admin/users/bulk', { action: 'deactivate', ids: [] });
    assert.equal(res.statusCode, 400);
    assert.equal(messageById(res.body, 'bulk-error'), 'Select at least one user.');
  });

  test('Apply with nobody ticked: 400, the list again, the message beside the action, the chosen action kept', async () => {
    const res = await postForm('/admin/users/bulk', [
      ['action', 'sign-out-everywhere'],
      ['back', '?status=active'],
    ]);
    assert.equal(res.statusCode, 400);
    assertNoDeadEnd(res);
    assert.match(res.body, /<h1[^>]*>Users<\/h1>/);
    assert.equal(messageById(res.body, 'bulk-error'), 'Select at least one user.');
    assert.match(res.body, /<option value="sign-out-everywhere" selected[ >]/, 'the chosen action is kept');
    assert.match(res.body, /id="f-status"[\s\S]*?<option value="active" selected>/, 'the list view (its filter) is kept');
  });

  test('a bad action: 400 beside the action select', async () => {
    const bob = await makeUser('Bob Builder');
    const res = await postForm('/admin/users/bulk', [
      ['action', 'explode'],
      ['ids', String(bob.id)],
    ]);
    assert.equal(res.statusCode, 400);
    assertNoDeadEnd(res);
    assert.match(messageById(res.body, 'bulk-error') ?? '', /Choose deactivate, reactivate or sign out everywhere/);
    assert.match(res.body, new RegExp(`name="ids" value="${bob.id}"[^>]* checked`), 'the ticked box stays ticked');
  });

  test('deactivating a batch that includes oneself: 409, nobody changed, the boxes stay ticked', async () => {
    const carol = await makeUser('Carol Clerk');
    const res = await postForm('/admin/users/bulk', [
      ['action', 'deactivate'],
      ['ids', String(carol.id)],
      ['ids', String(adminId)],
    ]);
    assert.equal(res.statusCode, 409);
    assertNoDeadEnd(res);
    assert.equal(messageById(res.body, 'bulk-error'), 'You cannot deactivate yourself.');
    assert.match(res.body, new RegExp(`name="ids" value="${carol.id}"[^>]* checked`));
    assert.equal(await isActive(carol.id), true);
  });

  test('a batch with a user that does not exist: 404 beside the action, nothing done', async () => {
    const dan = await makeUser('Dan Driver');
    const res = await postForm('/admin/users/bulk', [
      ['action', 'deactivate'],
      ['ids', String(dan.id)],
      ['ids', '999999'],
    ]);
    assert.equal(res.statusCode, 404);
    assertNoDeadEnd(res);
    assert.equal(messageById(res.body, 'bulk-error'), 'Some of the selected users do not exist.');
    assert.equal(await isActive(dan.id), true);
  });
});

describe('the user list: row actions', () => {
  test('deactivating oneself from the list: 409, the same filtered list, the message in that row', async () => {
    const res = await postForm(`/admin/users/${adminId}/deactivate`, [['back', '?q=Ada']]);
    assert.equal(res.statusCode, 409);
    assertNoDeadEnd(res);
    assert.match(res.body, /id="f-q"[^>]*value="Ada"/, 'the search is kept');
    assert.equal(messageById(res.body, `user-${adminId}-error`), 'You cannot deactivate yourself.');
    assert.equal(await isActive(adminId), true);
  });

  test('demoting oneself from the list: 409 in that row', async () => {
    const res = await postForm(`/admin/users/${adminId}/demote`, [['back', '']]);
    assert.equal(res.statusCode, 409);
    assertNoDeadEnd(res);
    assert.equal(messageById(res.body, `user-${adminId}-error`), 'You cannot demote yourself.');
  });

  test('an action on a user that does not exist: 404 with the list and the message above it', async () => {
    const res = await postForm('/admin/users/999999/promote', [['back', '']]);
    assert.equal(res.statusCode, 404);
    assertNoDeadEnd(res);
    assert.equal(messageById(res.body, 'list-error'), 'This user does not exist.');
  });
});

describe("a user's page", () => {
  test('demoting or deactivating oneself from one’s own page: 409, the page again, the message by the actions', async () => {
    for (const action of ['demote', 'deactivate']) {
      const res = await postForm(`/admin/users/${adminId}/${action}`, [['back', 'detail']]);
      assert.equal(res.statusCode, 409, action);
      assertNoDeadEnd(res);
      assert.match(res.body, /<h1[^>]*>Ada Admin/);
      assert.equal(messageById(res.body, 'actions-error'), `You cannot ${action} yourself.`);
    }
  });

  test('a reset link for a deactivated account: 400, the page again, the message by the actions', async () => {
    const erin = await makeUser('Erin Away');
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('idappuser', '=', erin.id).execute();
    const res = await postForm(`/admin/users/${erin.id}/reset-link`, []);
    assert.equal(res.statusCode, 400);
    assertNoDeadEnd(res);
    assert.match(res.body, /<h1[^>]*>Erin Away/);
    assert.match(messageById(res.body, 'actions-error') ?? '', /Reactivate the account first/);
  });

  test('revoking a session that does not exist: 400, the page again, the message by the sessions', async () => {
    const fay = await makeUser('Fay Phone');
    const res = await postForm(`/admin/users/${fay.id}/sessions/revoke`, [['session', 'nope']]);
    assert.equal(res.statusCode, 400);
    assertNoDeadEnd(res);
    assert.match(res.body, /<h1[^>]*>Fay Phone/);
    assert.equal(messageById(res.body, 'sessions-error'), 'This session does not exist.');
  });
});

describe('Add a user', () => {
  test('an e-mail that is taken: 400, the form again with what was typed and the message beside the e-mail', async () => {
    const gus = await makeUser('Gus Taken');
    const res = await postForm('/admin/users/new', [
      ['username', 'Gus Again'],
      ['email', gus.email.toUpperCase()],
      ['role', 'admin'],
      ['signIn', 'password'],
      ['password', 'a long enough passphrase'],
    ]);
    assert.equal(res.statusCode, 400);
    assertNoDeadEnd(res);
    assert.equal(messageById(res.body, 'f-email-error'), 'An account with this e-mail already exists.');
    assert.match(res.body, /id="f-username"[^>]*value="Gus Again"/);
    assert.match(res.body, /id="f-role-admin" value="admin" checked/);
  });
});
