import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import { findModelSummary, listModelSummaries } from '../llm/llm-queries.ts';

/**
 * Issue 16 on /admin/models: a connection's health on the list (item 8), the admin's default model (item 8), refused
 * actions shown on the page itself (item 5) and the questions asked before destructive ones (item 10).
 */
let t: TestApp;
let fake: FakeLlm;
let deadUrl: string;
let admin: TestClient;
let adminUserId: number;

before(async () => {
  t = await startTestApp();
  fake = await startFakeLlm();
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/v1`;
  await new Promise((resolve) => probe.close(resolve));
  admin = new TestClient(t.app);
  await admin.register({ username: 'Ada', email: 'ada@example.com' });
  const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', 'ada@example.com').executeTakeFirstOrThrow();
  adminUserId = row.idappuser;
});
after(async () => {
  await t.close();
  await fake.close();
});

async function post(url: string, fields: Record<string, string | undefined> = {}) {
  await admin.get('/admin/models'); // the page's CSRF token
  return admin.post(url, fields);
}

async function add(name: string, baseUrl: string): Promise<number> {
  const res = await post('/admin/models', { name, baseUrl, model: 'fake-echo', enabled: 'on' });
  assert.equal(res.statusCode, 303, res.body);
  const found = (await listModelSummaries(t.database.db)).find((m) => m.name === name);
  assert.ok(found);
  return found.id;
}

/** The list's row of one model, as HTML. */
async function rowOf(id: number): Promise<string> {
  const page = await admin.get('/admin/models');
  const match = new RegExp(`<tr data-model-id="${id}">[\\s\\S]*?</tr>`).exec(page.body);
  assert.ok(match, `no row for model ${id}`);
  return match[0];
}

const healthCell = (row: string) => /<td data-label="Health">([\s\S]*?)<\/td>/.exec(row)?.[1] ?? '';

describe('health on the list', () => {
  test('Test connection is kept: a failing model shows why and when, a working one shows OK', async () => {
    const dead = await add('Down', deadUrl);
    const up = await add('Up', fake.baseUrl);
    assert.match(healthCell(await rowOf(dead)), /Not tested/);

    assert.equal((await post(`/admin/models/${dead}/test`)).statusCode, 303);
    const failing = healthCell(await rowOf(dead));
    assert.match(failing, /badge text-bg-danger">Failing</);
    assert.match(failing, /Test failed <time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>: Could not reach the model server/);

    assert.equal((await post(`/admin/models/${up}/test`)).statusCode, 303);
    assert.match(healthCell(await rowOf(up)), /badge text-bg-success">OK<\/span> <span class="small text-body-secondary">Test passed <time/);

    // The server comes back (the URL is fixed): the next test says OK, and the last error stays, with its time.
    await t.database.db.updateTable('chatbot_schema.llm').set({ txbase_url: fake.baseUrl }).where('idllm', '=', dead).execute();
    await post(`/admin/models/${dead}/test`);
    const recovered = healthCell(await rowOf(dead));
    assert.match(recovered, />OK</);
    assert.match(recovered, /Last error <time[^>]*>[^<]*<\/time>: Could not reach the model server/);
  });

  test('a server that does not offer the model id fails the test', async () => {
    const res = await post('/admin/models', { name: 'Typo', baseUrl: fake.baseUrl, model: 'fake-ecko', enabled: 'on' });
    assert.equal(res.statusCode, 303);
    const id = (await listModelSummaries(t.database.db)).find((m) => m.name === 'Typo')?.id ?? 0;
    await post(`/admin/models/${id}/test`);
    assert.match(healthCell(await rowOf(id)), /Failing[\s\S]*does not list the model id “fake-ecko”/);
  });

  test('a long base URL shows its host, the rest below it, the whole in a tooltip', async () => {
    const long = `${fake.baseUrl}/deployments/a-very-long-deployment-name-for-gpt-4o-mini/extra`;
    const id = await add('Long URL', long);
    const server = /<td data-label="Server">([\s\S]*?)<\/td>/.exec(await rowOf(id))?.[1] ?? '';
    const host = new URL(fake.baseUrl).host;
    assert.match(server, new RegExp(`<span class="text-break" title="${long}">${host}</span>`));
    assert.match(server, /<div class="small text-body-secondary text-break">http · \/v1\/deployments\//);
  });
});

describe('the default model', () => {
  test('Make default marks one model (the last chosen), shows it, and is audited', async () => {
    const a = await add('Default A', fake.baseUrl);
    const b = await add('Default B', fake.baseUrl);
    assert.equal((await post(`/admin/models/${a}/default`)).statusCode, 303);
    assert.equal((await post(`/admin/models/${b}/default`)).statusCode, 303);
    assert.equal((await findModelSummary(t.database.db, a))?.isDefault, false);
    assert.equal((await findModelSummary(t.database.db, b))?.isDefault, true);
    const row = await rowOf(b);
    assert.match(row, /Default B <span class="badge text-bg-primary">Default<\/span>/);
    assert.doesNotMatch(row, />Make default</, 'the default has no button to become it');
    assert.match(await rowOf(a), />Make default</);
    const audit = await t.database.db
      .selectFrom('chatbot_schema.admin_audit')
      .select(['txaction', 'idactor', 'jsdetails'])
      .where('txaction', '=', 'default-model')
      .execute();
    assert.deepEqual(
      audit.map((r) => [r.idactor, r.jsdetails.name]),
      [
        [adminUserId, 'Default A'],
        [adminUserId, 'Default B'],
      ],
    );
  });

  test('a disabled model cannot be made the default: the list again, 409, saying why', async () => {
    const id = await add('Off', fake.baseUrl);
    await post(`/admin/models/${id}/disable`);
    const res = await post(`/admin/models/${id}/default`);
    assert.equal(res.statusCode, 409);
    assert.match(res.body, /alert-danger[^>]*>“Off” is not enabled: enable it before making it the default/);
    assert.equal((await findModelSummary(t.database.db, id))?.isDefault, false);
  });
});

describe('refused actions stay on the page', () => {
  test('an action on a model another admin deleted meanwhile shows the list again, 404, saying so', async () => {
    const id = await add('Gone soon', fake.baseUrl);
    await t.database.db.deleteFrom('chatbot_schema.llm').where('idllm', '=', id).execute();
    for (const action of ['enable', 'disable', 'test', 'default', 'delete']) {
      const res = await post(`/admin/models/${id}/${action}`);
      assert.equal(res.statusCode, 404, action);
      assert.match(res.body, /alert-danger[^>]*>This model no longer exists: another admin may have deleted it\./, action);
      assert.match(res.body, /<h1 class="h4 mb-3">Models<\/h1>/, action);
    }
  });

  test('saving an edit of a deleted model keeps what was typed, in the add form', async () => {
    const id = await add('Edited away', fake.baseUrl);
    await admin.get(`/admin/models/${id}/edit`);
    await t.database.db.deleteFrom('chatbot_schema.llm').where('idllm', '=', id).execute();
    const res = await admin.post(`/admin/models/${id}`, { name: 'My new name', baseUrl: fake.baseUrl, model: 'typed-model', enabled: 'on' });
    assert.equal(res.statusCode, 404);
    assert.match(res.body, /What you typed is in the form below/);
    assert.match(res.body, /id="f-name" name="name" type="text"\s+value="My new name"/);
    assert.match(res.body, /value="typed-model"/);
  });
});

describe('destructive actions ask first (web/confirm.ts reads data-confirm)', () => {
  test('Delete names the model; with chats, it says the model is disabled instead and how many chats keep it', async () => {
    const unused = await add('Unused', fake.baseUrl);
    assert.match(
      await rowOf(unused),
      /<form method="post" action="\/admin\/models\/\d+\/delete" class="d-inline" data-confirm="Delete “Unused”\? This cannot be undone\." data-confirm-button="Delete">/,
    );
    assert.doesNotMatch(await rowOf(unused), /\/disable" class="d-inline" data-confirm/, 'disabling a model nobody chats with asks nothing');

    const used = await add('Used', fake.baseUrl);
    for (let i = 0; i < 2; i++) await t.database.db.insertInto('chatbot_schema.chat').values({ idappuser: adminUserId, idllm: used }).execute();
    const row = await rowOf(used);
    assert.match(
      row,
      /\/delete" class="d-inline" data-confirm="“Used” has 2 chats, so it is disabled instead of deleted: users can no longer pick it, and its chats stay readable\." data-confirm-button="Disable">/,
    );
    assert.match(
      row,
      /\/disable" class="d-inline" data-confirm="Disable “Used”\? Users can no longer pick it, and its 2 chats become read-only\." data-confirm-button="Disable">/,
    );
  });

  test('a model name in the question is escaped', async () => {
    const id = await add('Evil" onmouseover="x', fake.baseUrl);
    assert.match(await rowOf(id), /data-confirm="Delete “Evil&quot; onmouseover=&quot;x”\? This cannot be undone\."/);
  });
});
