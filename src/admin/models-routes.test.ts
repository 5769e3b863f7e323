import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestApp, TEST_SECRET, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import { createApiKeyBox, getModelConnection, listModelSummaries } from '../llm/llm-queries.ts';

const API_KEY = 'sk-admin-test-key-4f9e2b';

let t: TestApp;
let fake: FakeLlm;
let locked: FakeLlm;
let closedPortUrl: string;
let admin: TestClient;
let user: TestClient;
let adminUserId: number;
/** Every page the admin was shown: none may ever contain the API key. */
const adminBodies: string[] = [];

before(async () => {
  t = await startTestApp();
  fake = await startFakeLlm();
  locked = await startFakeLlm({ apiKey: API_KEY });
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPortUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/v1`;
  await new Promise((resolve) => probe.close(resolve));

  admin = new TestClient(t.app);
  await admin.register({ username: 'Ada', email: 'ada@example.com' }); // the first account is the Admin
  user = new TestClient(t.app);
  await user.register({ username: 'Bob', email: 'bob@example.com' });
  await user.get('/chat');
  const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', 'ada@example.com').executeTakeFirstOrThrow();
  adminUserId = row.idappuser;
});
after(async () => {
  await t.close();
  await fake.close();
  await locked.close();
});

async function adminGet(url: string) {
  const res = await admin.get(url);
  adminBodies.push(res.body);
  return res;
}

async function adminPost(url: string, fields: Record<string, string | null | undefined> = {}) {
  await adminGet('/admin/models'); // a fresh CSRF token, as a browser showing the page would have
  const res = await admin.post(url, fields);
  adminBodies.push(res.body);
  return res;
}

/** Posts, follows the redirect back to the list and returns that page (with its flash messages). */
async function adminPostAndFollow(url: string, fields: Record<string, string | null | undefined> = {}) {
  const res = await adminPost(url, fields);
  assert.equal(res.statusCode, 303, res.body);
  assert.equal(res.headers.location, '/admin/models');
  return adminGet('/admin/models');
}

const form = (over: Record<string, string | undefined> = {}) => ({
  name: 'Fake',
  baseUrl: fake.baseUrl,
  model: 'fake-echo',
  apiKey: '',
  enabled: 'on',
  ...over,
});

async function modelId(name: string): Promise<number> {
  const found = (await listModelSummaries(t.database.db)).find((m) => m.name === name);
  assert.ok(found, `no model named ${name}`);
  return found.id;
}

describe('/admin/models: adding and listing', () => {
  test('an admin adds a model; the list shows it, with the key only as "set"', async () => {
    const page = await adminPostAndFollow('/admin/models', form({ name: 'Locked', baseUrl: locked.baseUrl, apiKey: API_KEY }));
    assert.match(page.body, /Model “Locked” added/);
    assert.match(page.body, /<td class="fw-semibold" data-label="Name">Locked<\/td>/);
    assert.match(page.body, />set</);
    await adminPostAndFollow('/admin/models', form({ name: 'Fake' }));
    const list = await adminGet('/admin/models');
    assert.match(list.body, /not set/);
    assert.match(list.body, /Add a model/);
  });

  test('the key is stored sealed, not in plain text, and opens to what was typed', async () => {
    const id = await modelId('Locked');
    const row = await t.database.db.selectFrom('chatbot_schema.llm').selectAll().where('idllm', '=', id).executeTakeFirstOrThrow();
    assert.ok(row.txapi_key_enc);
    assert.doesNotMatch(JSON.stringify(row), new RegExp(API_KEY));
    assert.equal((await getModelConnection(t.database.db, createApiKeyBox(TEST_SECRET), id))?.apiKey, API_KEY);
  });

  const invalid: Array<[string, Record<string, string | undefined>, RegExp]> = [
    ['an empty name', { name: '  ' }, /Enter a name/],
    ['a name over 100 characters', { name: 'n'.repeat(101) }, /at most 100/],
    ['a taken name (any case)', { name: 'FAKE' }, /Another model already has this name/],
    ['a name with a right-to-left override', { name: 'GPT\u202e4-iniM' }, /invisible text-direction characters/],
    ['a relative base URL', { baseUrl: 'localhost:11434' }, /http:\/\/ or https:\/\//],
    ['a base URL that is not a URL', { baseUrl: 'not a url' }, /absolute URL/],
    ['a file: base URL', { baseUrl: 'file:///etc/passwd' }, /http:\/\/ or https:\/\//],
    ['a javascript: base URL', { baseUrl: 'javascript:alert(1)' }, /http:\/\/ or https:\/\//],
    ['credentials in the base URL', { baseUrl: 'http://me:pw@localhost:11434/v1' }, /its own field/],
    ['an empty model id', { model: '' }, /Enter the model id/],
    ['a model id over 200 characters', { model: 'm'.repeat(201) }, /at most 200/],
    ['a missing field', { model: undefined }, /Model id is required/],
  ];
  for (const [label, fields, message] of invalid) {
    test(`${label} re-renders the form with a 400 beside the field, and stores nothing`, async () => {
      const before = (await listModelSummaries(t.database.db)).length;
      const res = await adminPost('/admin/models', form({ ...fields, apiKey: API_KEY }));
      assert.equal(res.statusCode, 400);
      assert.match(res.body, /is-invalid/);
      assert.match(res.body, new RegExp(`class="invalid-feedback"[^>]*>[^<]*${message.source}`));
      assert.equal((await listModelSummaries(t.database.db)).length, before);
    });
  }

  test('a re-rendered form keeps what was typed, except the key', async () => {
    const res = await adminPost('/admin/models', form({ name: 'Typed <b>name</b>', model: '', apiKey: API_KEY }));
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /value="Typed &lt;b&gt;name&lt;\/b&gt;"/);
  });
});

describe('/admin/models: editing', () => {
  test('the edit form shows the values but never the key', async () => {
    const res = await adminGet(`/admin/models/${await modelId('Locked')}/edit`);
    assert.equal(res.statusCode, 200);
    assert.match(res.body, new RegExp(`value="${locked.baseUrl}"`));
    assert.match(res.body, /A key is stored/);
    assert.match(res.body, /name="removeApiKey"/);
  });

  test('an empty key field keeps the stored key; a new one replaces it; "remove" clears it', async () => {
    const id = await modelId('Locked');
    const box = createApiKeyBox(TEST_SECRET);
    const key = async () => (await getModelConnection(t.database.db, box, id))?.apiKey;
    const page = await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Locked 2', baseUrl: locked.baseUrl, apiKey: '' }));
    assert.match(page.body, /Model “Locked 2” saved/);
    assert.equal(await key(), API_KEY);
    await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Locked 2', baseUrl: locked.baseUrl, apiKey: 'sk-other' }));
    assert.equal(await key(), 'sk-other');
    await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Locked 2', baseUrl: locked.baseUrl, removeApiKey: 'on' }));
    assert.equal(await key(), null);
    await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Locked', baseUrl: locked.baseUrl, apiKey: API_KEY }));
    assert.equal(await key(), API_KEY);
  });

  test('an invalid edit re-renders with a 400 and changes nothing', async () => {
    const id = await modelId('Fake');
    const res = await adminPost(`/admin/models/${id}`, form({ baseUrl: 'ftp://example.com' }));
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /invalid-feedback/);
    assert.equal((await listModelSummaries(t.database.db)).find((m) => m.id === id)?.baseUrl, fake.baseUrl);
    assert.equal((await adminPost(`/admin/models/${id}`, form({ name: 'Locked' }))).statusCode, 400);
  });

  test('unknown or malformed ids are 404 on every route', async () => {
    for (const id of ['999999', 'abc', '0', '99999999999']) {
      assert.equal((await adminGet(`/admin/models/${id}/edit`)).statusCode, 404, id);
      for (const action of ['', '/enable', '/disable', '/delete', '/test']) {
        assert.equal((await adminPost(`/admin/models/${id}${action}`, form())).statusCode, 404, `${id}${action}`);
      }
    }
  });
});

describe('/admin/models: enable, disable, test, delete', () => {
  test('disable and enable toggle what users can pick', async () => {
    const id = await modelId('Fake');
    assert.match((await adminPostAndFollow(`/admin/models/${id}/disable`)).body, /“Fake” is disabled/);
    assert.equal((await listModelSummaries(t.database.db)).find((m) => m.id === id)?.enabled, false);
    assert.match((await adminPostAndFollow(`/admin/models/${id}/enable`)).body, /“Fake” is enabled/);
    assert.equal((await listModelSummaries(t.database.db)).find((m) => m.id === id)?.enabled, true);
  });

  test('a prototype row without a base URL cannot be enabled or tested until it gets one', async () => {
    const { idllm } = await t.database.db
      .insertInto('chatbot_schema.llm')
      .values({ txshortname: 'legacy', is_enabled: false })
      .returning('idllm')
      .executeTakeFirstOrThrow();
    assert.match((await adminGet('/admin/models')).body, /Needs a base URL/);
    for (const action of ['enable', 'test']) {
      // Refused on the page itself (409, the list again with the reason), not on an error page.
      const res = await adminPost(`/admin/models/${idllm}/${action}`);
      assert.equal(res.statusCode, 409, action);
      assert.match(res.body, /alert-danger[^>]*>“legacy” has no base URL yet: edit it and set one first/);
      assert.match(res.body, /Add a model/);
    }
    assert.equal((await listModelSummaries(t.database.db)).find((m) => m.id === idllm)?.enabled, false);
  });

  test('"Test connection" lists the models the server offers, using the stored key', async () => {
    const page = await adminPostAndFollow(`/admin/models/${await modelId('Locked')}/test`);
    assert.match(page.body, /“Locked” answered: 2 models offered \(fake-echo, fake-large\)/);
    assert.doesNotMatch(page.body, /does not list/);
  });

  test('"Test connection" warns when the model id is not among them, and reports failures', async () => {
    await adminPostAndFollow('/admin/models', form({ name: 'Typo', model: 'fake-ecko' }));
    assert.match((await adminPostAndFollow(`/admin/models/${await modelId('Typo')}/test`)).body, /does not list the model id “fake-ecko”/);
    await adminPostAndFollow('/admin/models', form({ name: 'Down', baseUrl: closedPortUrl }));
    const down = await adminPostAndFollow(`/admin/models/${await modelId('Down')}/test`);
    assert.match(down.body, /alert-danger[^>]*>Testing “Down” failed: Could not reach the model server/);
    await adminPostAndFollow('/admin/models', form({ name: 'No key', baseUrl: locked.baseUrl }));
    assert.match((await adminPostAndFollow(`/admin/models/${await modelId('No key')}/test`)).body, /refused the API key \(401\)/);
  });

  test('deleting an unused model removes it', async () => {
    const id = await modelId('Typo');
    assert.match((await adminPostAndFollow(`/admin/models/${id}/delete`)).body, /Model “Typo” deleted/);
    assert.equal(
      (await listModelSummaries(t.database.db)).find((m) => m.id === id),
      undefined,
    );
  });

  test('deleting a model that has chats disables it instead, and says so', async () => {
    const id = await modelId('Fake');
    await t.database.db.insertInto('chatbot_schema.chat').values({ idappuser: adminUserId, idllm: id }).execute();
    const page = await adminPostAndFollow(`/admin/models/${id}/delete`);
    assert.match(page.body, /has chats, so it was disabled instead of deleted/);
    const after = (await listModelSummaries(t.database.db)).find((m) => m.id === id);
    assert.equal(after?.enabled, false);
    assert.equal(after?.chatCount, 1);
  });
});

/** A model server that only records the Authorization header of every request it gets (and lists one model). */
interface Recorder {
  readonly origin: string;
  readonly authorizations: Array<string | undefined>;
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const authorizations: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-echo', object: 'model', created: 0, owned_by: 'test' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    authorizations,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('/admin/models: a stored key only goes to the server it was entered for', () => {
  let first: Recorder;
  let second: Recorder;
  before(async () => {
    first = await startRecorder();
    second = await startRecorder();
  });
  after(async () => {
    await first.close();
    await second.close();
  });

  const SECRET_KEY = 'sk-only-for-the-first-server';
  const box = createApiKeyBox(TEST_SECRET);

  test('the edit form says that changing the server removes the stored key', async () => {
    await adminPostAndFollow('/admin/models', form({ name: 'Moving', baseUrl: `${first.origin}/v1`, apiKey: SECRET_KEY }));
    const res = await adminGet(`/admin/models/${await modelId('Moving')}/edit`);
    assert.match(res.body, /another server \(scheme, host or port\)[^<]*removed/);
  });

  test('a path-only change on the same origin keeps the key, and Test connection still sends it there', async () => {
    const id = await modelId('Moving');
    const page = await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Moving', baseUrl: `${first.origin}/api/v1/`, apiKey: '' }));
    assert.doesNotMatch(page.body, /key was removed/);
    assert.equal((await getModelConnection(t.database.db, box, id))?.apiKey, SECRET_KEY);
    await adminPostAndFollow(`/admin/models/${id}/test`);
    assert.equal(first.authorizations.at(-1), `Bearer ${SECRET_KEY}`);
  });

  test('moving to another origin with the key field empty drops the key, says so, and Test connection does not send it', async () => {
    const id = await modelId('Moving');
    const page = await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Moving', baseUrl: `${second.origin}/v1`, apiKey: '' }));
    await adminPostAndFollow(`/admin/models/${id}/test`);
    assert.ok(second.authorizations.length > 0, 'the second server was asked');
    for (const header of second.authorizations) assert.doesNotMatch(header ?? '', new RegExp(SECRET_KEY));
    assert.match(page.body, /Model “Moving” saved/);
    assert.match(page.body, /stored API key was removed because the server changed/);
    assert.equal((await getModelConnection(t.database.db, box, id))?.apiKey, null);
  });

  test('a key typed again with the new origin is kept and sent there', async () => {
    const id = await modelId('Moving');
    const page = await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Moving', baseUrl: `${first.origin}/v1`, apiKey: 'sk-typed-again' }));
    assert.doesNotMatch(page.body, /key was removed/);
    await adminPostAndFollow(`/admin/models/${id}/test`);
    assert.equal(first.authorizations.at(-1), 'Bearer sk-typed-again');
  });

  test('scheme, host and port each count as another server; default ports and case do not', async () => {
    const id = await modelId('Moving');
    const key = async () => (await getModelConnection(t.database.db, box, id))?.apiKey;
    const save = (baseUrl: string, apiKey = '') => adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Moving', baseUrl, apiKey }));
    await save('https://models.example.com/v1', 'sk-x');
    await save('HTTPS://Models.Example.COM:443/other');
    assert.equal(await key(), 'sk-x');
    for (const other of ['http://models.example.com/v1', 'https://models.example.com:8443/v1', 'https://evil.example.com/v1']) {
      await save('https://models.example.com/v1', 'sk-x');
      await save(other);
      assert.equal(await key(), null, other);
    }
  });
});

describe('/admin/models: access control', () => {
  const routes = async () => {
    const id = await modelId('Locked');
    return {
      gets: ['/admin/models', `/admin/models/${id}/edit`],
      posts: [
        '/admin/models',
        `/admin/models/${id}`,
        `/admin/models/${id}/enable`,
        `/admin/models/${id}/disable`,
        `/admin/models/${id}/delete`,
        `/admin/models/${id}/test`,
      ],
    };
  };

  test('a signed-in non-admin gets 403 on every route, and changes nothing', async () => {
    const before = await listModelSummaries(t.database.db);
    const { gets, posts } = await routes();
    for (const url of gets) assert.equal((await user.get(url)).statusCode, 403, url);
    await user.get('/chat');
    for (const url of posts) assert.equal((await user.post(url, form({ name: 'Hijacked' }))).statusCode, 403, url);
    assert.deepEqual(await listModelSummaries(t.database.db), before);
  });

  test('a signed-out visitor is sent to sign in', async () => {
    const visitor = new TestClient(t.app);
    const { gets, posts } = await routes();
    for (const url of gets) {
      const res = await visitor.get(url);
      assert.equal(res.statusCode, 303, url);
      assert.equal(res.headers.location, `/login?next=${encodeURIComponent(url)}`);
    }
    await visitor.get('/login');
    for (const url of posts) {
      const res = await visitor.post(url, form());
      assert.equal(res.statusCode, 303, url);
      assert.equal(res.headers.location, '/login');
    }
  });

  test('an admin POST without a valid CSRF token is refused with 403', async () => {
    const before = (await listModelSummaries(t.database.db)).length;
    await adminGet('/admin/models');
    assert.equal((await admin.post('/admin/models', { ...form({ name: 'No token' }), _csrf: null })).statusCode, 403);
    assert.equal((await admin.post('/admin/models', { ...form({ name: 'Bad token' }), _csrf: 'x'.repeat(43) })).statusCode, 403);
    const id = await modelId('Locked');
    assert.equal((await admin.post(`/admin/models/${id}/delete`, { _csrf: null })).statusCode, 403);
    assert.equal((await listModelSummaries(t.database.db)).length, before);
  });

  test('the admin navigation links to the models page', async () => {
    assert.match((await adminGet('/admin/models')).body, /href="\/admin\/models"/);
  });
});

describe('/admin/models: the audit log', () => {
  test('every model change writes an audit row with what changed, never the key', async () => {
    const db = t.database.db;
    const before = await db
      .selectFrom('chatbot_schema.admin_audit')
      .select((eb) => eb.fn.max('idaudit').as('max'))
      .executeTakeFirstOrThrow();
    const since = Number(before.max ?? 0);
    await adminPostAndFollow('/admin/models', form({ name: 'Audited', apiKey: API_KEY }));
    const id = await modelId('Audited');
    await adminPostAndFollow(`/admin/models/${id}`, form({ name: 'Audited 2' }));
    await adminPostAndFollow(`/admin/models/${id}/disable`);
    await adminPostAndFollow(`/admin/models/${id}/enable`);
    await adminPostAndFollow(`/admin/models/${id}/delete`);
    const rows = await db
      .selectFrom('chatbot_schema.admin_audit')
      .select(['txaction', 'idactor', 'idtarget', 'jsdetails'])
      .where('idaudit', '>', since)
      .orderBy('idaudit')
      .execute();
    assert.deepEqual(
      rows.map((r) => r.txaction),
      ['create-model', 'update-model', 'disable-model', 'enable-model', 'delete-model'],
    );
    assert.ok(rows.every((r) => r.idactor === adminUserId && r.idtarget === null));
    assert.equal(rows[0]?.jsdetails.apiKey, 'set');
    assert.equal(rows[1]?.jsdetails.name, 'Audited 2');
    assert.doesNotMatch(JSON.stringify(rows), new RegExp(API_KEY));
  });
});

// Last, so that it sees every page the tests above showed the admin.
test('the API key never appeared in any page shown to the admin', () => {
  assert.ok(adminBodies.length > 50);
  for (const body of adminBodies) assert.doesNotMatch(body, new RegExp(API_KEY));
});
