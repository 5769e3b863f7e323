import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { addModel } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { createSession } from '../auth/sessions.ts';
import { getModelAccess, listUserGroups } from '../groups/group-queries.ts';
import { usageStatus } from '../groups/usage-limits.ts';
import { createUser, grantAdmin } from '../users/user-queries.ts';

// The admin pages of groups, model access and limits, through the forms an admin submits.

let t: TestApp;
let admin: TestClient;
let n = 0;
const db = () => t.database.db;

async function makeUser(username = `user${++n}`): Promise<{ id: number; username: string }> {
  const { id } = await createUser(db(), { username, email: `${username.toLowerCase()}-${n}@example.com`, passwordHash: 'x' });
  return { id, username };
}

before(async () => {
  t = await startTestApp();
  const a = await makeUser('Ann Admin');
  await grantAdmin(db(), a.id);
  admin = new TestClient(t.app);
  admin.cookies.set('parley_session', await createSession(db(), a.id, {}));
  assert.equal((await admin.get('/admin/groups')).statusCode, 200);
});
after(() => t.close());

async function createGroupViaForm(name: string, managed = false): Promise<number> {
  await admin.get('/admin/groups');
  const res = await admin.post('/admin/groups', { name, ...(managed ? { managed: 'on' } : {}) });
  assert.equal(res.statusCode, 303, res.body);
  const id = Number(/^\/admin\/groups\/(\d+)$/.exec(String(res.headers.location))?.[1]);
  assert.ok(id > 0);
  return id;
}

const audit = async (action: string) =>
  (await db().selectFrom('chatbot_schema.admin_audit').select(['txtarget', 'jsdetails']).where('txaction', '=', action).execute()).length;

test('create (303 to the group), a taken name refused beside the field, the list counts members', async () => {
  const id = await createGroupViaForm('Engineering');
  const again = await admin.post('/admin/groups', { name: 'engineering' });
  assert.equal(again.statusCode, 400);
  assert.match(again.body, /Another group already has this name/);
  const empty = await admin.post('/admin/groups', { name: '  ' });
  assert.equal(empty.statusCode, 400);
  const [a, b] = [await makeUser(), await makeUser()];
  await admin.get(`/admin/groups/${id}`);
  assert.equal((await admin.post(`/admin/groups/${id}/members`, { user_ids: String(a.id) })).statusCode, 303);
  const form = new URLSearchParams([
    ['_csrf', admin.csrf],
    ['user_ids', String(a.id)],
    ['user_ids', String(b.id)],
  ]);
  const res = await t.app.inject({
    method: 'POST',
    url: `/admin/groups/${id}/members`,
    payload: form.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
  });
  assert.equal(res.statusCode, 303);
  const list = await admin.get('/admin/groups');
  assert.match(list.body, new RegExp(`data-group-id="${id}"[\\s\\S]*?data-label="Members" class="text-end">2<`));
  assert.equal(await audit('add-to-group'), 2, 'one audit row per person added');
  const page = await admin.get(`/admin/groups/${id}`);
  assert.match(page.body, /1–2 of 2/);
  assert.match(page.body, /data-confirm="Delete the group “Engineering”\? Its 2 members leave it/);
});

test('members: search, paging, remove; nobody ticked is refused beside the button', async () => {
  const id = await createGroupViaForm('Paged');
  const people = await Promise.all(Array.from({ length: 55 }, (_, i) => makeUser(`Member ${String(i).padStart(2, '0')}`)));
  const ids = new URLSearchParams([['_csrf', admin.csrf], ...people.map((p): [string, string] => ['user_ids', String(p.id)])]);
  await t.app.inject({
    method: 'POST',
    url: `/admin/groups/${id}/members`,
    payload: ids.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
  });
  assert.match((await admin.get(`/admin/groups/${id}`)).body, /1–50 of 55/);
  assert.match((await admin.get(`/admin/groups/${id}?page=2`)).body, /51–55 of 55/);
  assert.match((await admin.get(`/admin/groups/${id}?q=member%2005`)).body, /1–1 of 1/);
  assert.equal((await admin.get(`/admin/groups/${id}?page=x`)).statusCode, 400);
  const none = await admin.post(`/admin/groups/${id}/members/remove`, {});
  assert.equal(none.statusCode, 400);
  assert.match(none.body, /id="members-error"[^>]*>Select at least one user/);
  assert.equal((await admin.post(`/admin/groups/${id}/members/remove`, { user_ids: String(people[0]?.id) })).statusCode, 303);
  assert.match((await admin.get(`/admin/groups/${id}`)).body, /of 54/);
  const found = await admin.get(`/admin/groups/${id}?add_q=member%2000`);
  assert.match(found.body, /id="add-form"[\s\S]*Member 00/, 'add by search offers the one removed');
});

test('a group managed by sign-in refuses manual changes with a message, and changes nothing', async () => {
  const id = await createGroupViaForm('Staff', true);
  const u = await makeUser();
  await admin.get(`/admin/groups/${id}`);
  const res = await admin.post(`/admin/groups/${id}/members`, { user_ids: String(u.id) });
  assert.equal(res.statusCode, 409);
  assert.match(res.body, /managed by sign-in: its members come from each sign-in’s groups claim/);
  assert.deepEqual(await listUserGroups(db(), u.id), []);
  await admin.get('/admin/users');
  const bulk = await admin.post('/admin/users/bulk', { action: 'add-to-group', group: String(id), ids: String(u.id) });
  assert.equal(bulk.statusCode, 409, 'the bulk form does not offer managed groups, and refuses one posted anyway');
  assert.match(bulk.body, /id="bulk-error"[^>]*>This group is managed by sign-in/);
  assert.deepEqual(await listUserGroups(db(), u.id), []);
});

test('bulk add to group and remove from group on /admin/users', async () => {
  const id = await createGroupViaForm('Bulk');
  const [a, b] = [await makeUser(), await makeUser()];
  await admin.get('/admin/users');
  const form = (action: string) =>
    new URLSearchParams([
      ['_csrf', admin.csrf],
      ['action', action],
      ['group', String(id)],
      ['ids', String(a.id)],
      ['ids', String(b.id)],
    ]).toString();
  const post = (action: string) =>
    t.app.inject({
      method: 'POST',
      url: '/admin/users/bulk',
      payload: form(action),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
    });
  assert.equal((await post('add-to-group')).statusCode, 303);
  assert.deepEqual(
    (await listUserGroups(db(), a.id)).map((g) => g.name),
    ['Bulk'],
  );
  assert.equal((await post('remove-from-group')).statusCode, 303);
  assert.deepEqual(await listUserGroups(db(), b.id), []);
  const noGroup = await admin.post('/admin/users/bulk', { action: 'add-to-group', ids: String(a.id) });
  assert.equal(noGroup.statusCode, 400);
  assert.match(noGroup.body, /Choose the group/);
});

test('group and user limits: bad values refused beside the field, good ones saved and in force', async () => {
  const id = await createGroupViaForm('Limited');
  const u = await makeUser();
  await admin.post(`/admin/groups/${id}/members`, { user_ids: String(u.id) });
  const bad = await admin.post(`/admin/groups/${id}/limits`, { prompts_per_day: '-3', tokens_per_day: '', tokens_per_month: '' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /id="f-prompts_per_day-error">Prompts per day: enter a whole number/);
  assert.equal((await admin.post(`/admin/groups/${id}/limits`, { prompts_per_day: '20', tokens_per_day: '', tokens_per_month: '100000' })).statusCode, 303);
  assert.deepEqual((await usageStatus(db(), u.id)).limits, { prompts_per_day: 20, tokens_per_day: null, tokens_per_month: 100_000 });
  await admin.get(`/admin/users/${u.id}`);
  assert.equal((await admin.post(`/admin/users/${u.id}/limits`, { prompts_per_day: '5' })).statusCode, 303);
  assert.deepEqual((await usageStatus(db(), u.id)).limits, { prompts_per_day: 5, tokens_per_day: null, tokens_per_month: 100_000 });
  const page = await admin.get(`/admin/users/${u.id}`);
  assert.match(page.body, /href="\/admin\/groups\/\d+">Limited</);
  assert.equal(await audit('user-limits'), 1);
  const auditPage = await admin.get('/admin/audit');
  assert.match(auditPage.body, /set the limits of the group “Limited”: prompts per day: 20, tokens per month: 100,000/);
});

test('model access: everyone or listed groups; none ticked is refused; audited', async () => {
  const model = await addModel(t.database, 'http://127.0.0.1:9/v1', 'Big model');
  const id = await createGroupViaForm('Pilots');
  const edit = await admin.get(`/admin/models/${model}/edit`);
  assert.match(edit.body, /id="access"/);
  const none = await admin.post(`/admin/models/${model}/access`, { access: 'groups' });
  assert.equal(none.statusCode, 400);
  assert.match(none.body, /Tick at least one group/);
  assert.equal((await admin.post(`/admin/models/${model}/access`, { access: 'groups', group_ids: String(id) })).statusCode, 303);
  assert.deepEqual(await getModelAccess(db(), model), { restricted: true, groupIds: [id] });
  assert.equal((await admin.post(`/admin/models/${model}/access`, { access: 'everyone', group_ids: String(id) })).statusCode, 303);
  assert.deepEqual(await getModelAccess(db(), model), { restricted: false, groupIds: [] });
  assert.match((await admin.get('/admin/audit')).body, /made the model “Big model” available to the groups “Pilots” only/);
});

test('rename, mark managed, delete', async () => {
  const id = await createGroupViaForm('Old name');
  assert.equal((await admin.post(`/admin/groups/${id}/settings`, { name: 'New name', managed: 'on' })).statusCode, 303);
  assert.match((await admin.get(`/admin/groups/${id}`)).body, /New name <span class="badge text-bg-info">managed by sign-in/);
  assert.equal((await admin.post(`/admin/groups/${id}/delete`, {})).statusCode, 303);
  assert.equal((await admin.get(`/admin/groups/${id}`)).statusCode, 404);
  assert.equal(await audit('delete-group'), 1);
});
