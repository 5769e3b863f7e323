import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { TEST_SECRET, testConfig } from '../../test/app.ts';
import { openTestDatabase } from '../../test/database.ts';
import { SecretBox } from '../crypto/secret-box.ts';
import { type Db, type OpenedDatabase, openDatabase } from '../db/database.ts';
import { bootstrapModels } from './bootstrap-models.ts';
import {
  ApiKeyUnreadableError,
  createApiKeyBox,
  createModel,
  deleteModel,
  getModelConnection,
  listEnabledModels,
  listModelSummaries,
  setDefaultModel,
  updateModel,
} from './llm-queries.ts';

let database: OpenedDatabase;
const box = createApiKeyBox(TEST_SECRET);
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

const closers: Array<() => Promise<void>> = [];

/**
 * On PostgreSQL, pools of their own to the test database, like separate app processes would have (closed by the
 * test, so no connection is left for the final DROP DATABASE to cut). PGlite is one connection: the shared one.
 */
async function openProcesses(n: number): Promise<Db[]> {
  if (database.kind !== 'postgres') return Array.from({ length: n }, () => database.db);
  const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(database.db);
  const url = new URL(process.env.TEST_DATABASE_URL ?? '');
  url.pathname = `/${rows[0]?.name}`;
  const opened = await Promise.all(Array.from({ length: n }, () => openDatabase({ databaseUrl: url.toString() })));
  closers.push(...opened.map((o) => o.close));
  return opened.map((o) => o.db);
}

async function clearModels(): Promise<void> {
  await sql`TRUNCATE chatbot_schema.llm, chatbot_schema.chat, chatbot_schema.app_user RESTART IDENTITY CASCADE`.execute(database.db);
}

async function addChat(idllm: number): Promise<void> {
  const { idappuser } = await database.db
    .insertInto('chatbot_schema.app_user')
    .values({ txusername: 'u', txemail: `u${Math.random()}@example.com`, password: null })
    .returning('idappuser')
    .executeTakeFirstOrThrow();
  await database.db.insertInto('chatbot_schema.chat').values({ idappuser, idllm }).execute();
}

const input = (name: string, over: Partial<{ baseUrl: string; model: string; enabled: boolean; apiKey: string | null }> = {}) => ({
  name,
  baseUrl: 'http://127.0.0.1:11434/v1',
  model: 'llama3',
  enabled: true,
  apiKey: null,
  ...over,
});

describe('model queries', () => {
  beforeEach(clearModels);

  test('the API key is sealed in the database and opened by getModelConnection', async () => {
    const id = await createModel(database.db, box, input('Keyed', { apiKey: 'sk-plain-secret' }));
    const row = await database.db.selectFrom('chatbot_schema.llm').select('txapi_key_enc').where('idllm', '=', id).executeTakeFirstOrThrow();
    assert.ok(row.txapi_key_enc?.startsWith('v1.'));
    assert.doesNotMatch(row.txapi_key_enc ?? '', /sk-plain-secret/);
    const conn = await getModelConnection(database.db, box, id);
    assert.deepEqual(conn, { id, name: 'Keyed', baseUrl: 'http://127.0.0.1:11434/v1', apiKey: 'sk-plain-secret', model: 'llama3', enabled: true });
    assert.equal(await getModelConnection(database.db, box, id + 1000), undefined);
  });

  test('a key sealed under another APP_SECRET is reported, not sent or crashed on', async () => {
    const id = await createModel(database.db, new SecretBox('another-secret-that-is-long-enough-000000', 'llm-api-key'), input('Moved', { apiKey: 'sk-x' }));
    await assert.rejects(getModelConnection(database.db, box, id), ApiKeyUnreadableError);
  });

  test('updateModel keeps, replaces or removes the key', async () => {
    const id = await createModel(database.db, box, input('K', { apiKey: 'sk-one' }));
    const key = async () => (await getModelConnection(database.db, box, id))?.apiKey;
    assert.equal(await updateModel(database.db, box, id, { ...input('K2'), apiKey: undefined }), true);
    assert.equal(await key(), 'sk-one');
    await updateModel(database.db, box, id, { ...input('K2'), apiKey: 'sk-two' });
    assert.equal(await key(), 'sk-two');
    await updateModel(database.db, box, id, { ...input('K2'), apiKey: null });
    assert.equal(await key(), null);
    assert.equal(await updateModel(database.db, box, id + 1000, { ...input('K2'), apiKey: undefined }), false);
  });

  test('summaries count chats; the picker lists only enabled models with a base URL', async () => {
    const used = await createModel(database.db, box, input('b-used'));
    await createModel(database.db, box, input('A-off', { enabled: false }));
    // A row adopted from the Flask prototype: only a short name.
    const { idllm: legacy } = await database.db
      .insertInto('chatbot_schema.llm')
      .values({ txshortname: 'c-legacy' })
      .returning('idllm')
      .executeTakeFirstOrThrow();
    await addChat(used);
    await addChat(used);
    const summaries = await listModelSummaries(database.db);
    assert.deepEqual(
      summaries.map((m) => [m.name, m.chatCount, m.enabled, m.hasApiKey]),
      [
        ['A-off', 0, false, false],
        ['b-used', 2, true, false],
        ['c-legacy', 0, true, false],
      ],
    );
    assert.deepEqual(await listEnabledModels(database.db, 0), [{ id: used, name: 'b-used' }]);
    const conn = await getModelConnection(database.db, box, legacy);
    assert.equal(conn?.enabled, false);
    assert.equal(conn?.model, 'c-legacy');
  });

  test('deleteModel deletes an unused model, disables a used one, and reports a missing one', async () => {
    const unused = await createModel(database.db, box, input('unused'));
    const used = await createModel(database.db, box, input('used'));
    await addChat(used);
    assert.equal(await deleteModel(database.db, unused), 'deleted');
    assert.equal(await deleteModel(database.db, used), 'disabled');
    assert.equal(await deleteModel(database.db, unused), 'missing');
    assert.deepEqual(
      (await listModelSummaries(database.db)).map((m) => [m.name, m.enabled]),
      [['used', false]],
    );
  });
});

describe('setDefaultModel', () => {
  beforeEach(clearModels);

  test('admins choosing different defaults at once take turns: every choice succeeds and one default remains', async () => {
    const ids = await Promise.all(['d1', 'd2', 'd3', 'd4', 'd5', 'd6'].map((name) => createModel(database.db, box, input(name))));
    const processes = await openProcesses(ids.length);
    try {
      const results = await Promise.all(ids.map((id, i) => (processes[i] as Db).transaction().execute((trx) => setDefaultModel(trx, id))));
      assert.deepEqual(
        results,
        ids.map(() => true),
      );
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
    }
    const defaults = (await listModelSummaries(database.db)).filter((m) => m.isDefault);
    assert.equal(defaults.length, 1);
  });

  test('a missing model is reported and leaves the default as it was', async () => {
    const id = await createModel(database.db, box, input('kept'));
    await database.db.transaction().execute((trx) => setDefaultModel(trx, id));
    assert.equal(await database.db.transaction().execute((trx) => setDefaultModel(trx, id + 1000)), false);
    assert.deepEqual(
      (await listModelSummaries(database.db)).map((m) => [m.name, m.isDefault]),
      [['kept', true]],
    );
  });
});

describe('bootstrapModels', () => {
  beforeEach(clearModels);
  const env = { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', OPENAI_MODELS: 'llama3, qwen2.5:7b ,llama3', OPENAI_API_KEY: 'sk-boot' };

  test('does nothing without OPENAI_BASE_URL and OPENAI_MODELS', async () => {
    assert.equal(await bootstrapModels(database.db, testConfig()), 0);
    assert.deepEqual(await listModelSummaries(database.db), []);
  });

  test('registers one enabled connection per model id, with the key sealed, and only once', async () => {
    const config = testConfig(env);
    assert.equal(await bootstrapModels(database.db, config), 2);
    assert.equal(await bootstrapModels(database.db, config), 0);
    const models = await listModelSummaries(database.db);
    assert.deepEqual(
      models.map((m) => [m.name, m.model, m.baseUrl, m.enabled, m.hasApiKey]),
      [
        ['llama3', 'llama3', env.OPENAI_BASE_URL, true, true],
        ['qwen2.5:7b', 'qwen2.5:7b', env.OPENAI_BASE_URL, true, true],
      ],
    );
    const conn = await getModelConnection(database.db, box, models[0]?.id ?? 0);
    assert.equal(conn?.apiKey, 'sk-boot');
  });

  test('several processes starting at once register the models once', async () => {
    const config = testConfig(env);
    const processes = await openProcesses(4);
    try {
      const inserted = await Promise.all(processes.flatMap((db) => [bootstrapModels(db, config), bootstrapModels(db, config)]));
      assert.deepEqual(
        inserted.sort((a, b) => b - a),
        [2, 0, 0, 0, 0, 0, 0, 0],
      );
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
    }
    assert.equal((await listModelSummaries(database.db)).length, 2);
  });

  test('leaves a table that already has models alone (a deleted bootstrap model never comes back)', async () => {
    await createModel(database.db, box, input('Mine'));
    assert.equal(await bootstrapModels(database.db, testConfig(env)), 0);
    assert.deepEqual(
      (await listModelSummaries(database.db)).map((m) => m.name),
      ['Mine'],
    );
  });
});
