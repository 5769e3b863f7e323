import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import type { TestClient } from '../../test/client.ts';
import { deleteModel, setModelEnabled } from '../llm/llm-queries.ts';

// Switching a chat's model (PATCH /api/chats/:id {llm}) and regenerating one answer with another model (migration 023).

let w: ChatWorld;
let other: number;
before(async () => {
  w = await startChatWorld();
  other = await addModel(w.t.database, w.llm.baseUrl, 'Fake other');
});
after(() => w.close());

function patch(client: TestClient, chatId: number, payload: unknown) {
  return client.app.inject({
    method: 'PATCH',
    url: `/api/chats/${chatId}`,
    payload: payload as object,
    headers: { cookie: client.cookieHeader(), 'x-csrf-token': client.csrf },
  });
}

const db = () => w.t.database.db;
const chatModel = async (chatId: number) =>
  (await db().selectFrom('chatbot_schema.chat').select('idllm').where('idchat', '=', chatId).executeTakeFirstOrThrow()).idllm;
const answerModels = async (chatId: number) =>
  (await db().selectFrom('chatbot_schema.response').select(['idllm', 'txstatus']).where('idchat', '=', chatId).orderBy('idresponse').execute()).map(
    (r) => r.idllm,
  );

type UsageRow = { idllm: number; nresponses: number; nprompts: number };
const usageByModel = async () => (await sql<UsageRow>`SELECT idllm, nresponses, nprompts FROM chatbot_schema.usage_day_model`.execute(db())).rows;

async function ask(chatId: number, content: string) {
  const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content })).body);
  assert.equal(events.at(-1)?.event, 'done');
  return events;
}

test('later answers come from the new model; each answer names its own, in the API, the page and the statistics', async () => {
  const chatId = await newChat(w.user, w.modelId);
  await ask(chatId, 'first');
  const before = await usageByModel();

  const res = await patch(w.user, chatId, { llm: other });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { id: chatId, llm: other });
  const events = await ask(chatId, 'second');
  assert.deepEqual(events[0]?.data.llm, { id: other, name: 'Fake other' }, 'the start event names the model writing the answer');
  assert.deepEqual(await answerModels(chatId), [w.modelId, other]);

  const api = (await w.user.get(`/api/chats/${chatId}`)).json() as { llm: { name: string }; turns: Array<{ response: { llm: { name: string } } }> };
  assert.equal(api.llm.name, 'Fake other');
  assert.deepEqual(
    api.turns.map((t) => t.response.llm.name),
    ['Fake echo', 'Fake other'],
  );
  const page = (await w.user.get(`/chat/${chatId}`)).body;
  assert.deepEqual(
    [...page.matchAll(/<span class="answer-model" title="Model">([^<]+)</g)].map((m) => m[1]),
    ['Fake echo', 'Fake other'],
  );
  assert.match(page, new RegExp(`<option value="${other}" selected>Fake other</option>`), 'the header picker shows the chat’s model');

  // The rollups count the answer to the model that wrote it, and the prompt to the model it was asked of.
  const after = await usageByModel();
  const sum = (rows: typeof after, id: number, k: 'nresponses' | 'nprompts') => rows.filter((r) => r.idllm === id).reduce((n, r) => n + r[k], 0);
  assert.equal(sum(after, other, 'nresponses') - sum(before, other, 'nresponses'), 1);
  assert.equal(sum(after, other, 'nprompts') - sum(before, other, 'nprompts'), 1);
  assert.equal(sum(after, w.modelId, 'nresponses') - sum(before, w.modelId, 'nresponses'), 0);
});

test('a disabled, deleted or unknown model is refused with 409 and the chat keeps its model; bad bodies get 400', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const off = await addModel(w.t.database, w.llm.baseUrl, 'Switched off', false);
  const gone = await addModel(w.t.database, w.llm.baseUrl, 'Gone');
  assert.equal(await deleteModel(db(), gone), 'deleted');
  for (const llm of [off, gone, 999999]) {
    const res = await patch(w.user, chatId, { llm });
    assert.equal(res.statusCode, 409, `model ${llm}`);
    assert.match(res.json().error, /not available/);
  }
  assert.equal(await chatModel(chatId), w.modelId);
  for (const body of [{}, { llm: 'two' }, { llm: -1 }, { llm: other, extra: 1 }])
    assert.equal((await patch(w.user, chatId, body)).statusCode, 400, JSON.stringify(body));
  // A model restricted to groups the user is not in (issue 19's may_use_model): 403, for a switch and for a regenerate.
  const restricted = await addModel(w.t.database, w.llm.baseUrl, 'Restricted');
  await db().updateTable('chatbot_schema.llm').set({ is_restricted: true }).where('idllm', '=', restricted).execute();
  const forbidden = await patch(w.user, chatId, { llm: restricted });
  assert.equal(forbidden.statusCode, 403);
  assert.match(forbidden.json().error, /some groups only/);
  await ask(chatId, 'one to regenerate');
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/regenerate`, { llm: restricted })).statusCode, 403);
  // Another user's chat is a 404 before anything is looked at.
  assert.equal((await patch(w.admin, chatId, { llm: other })).statusCode, 404);
  assert.equal(await chatModel(chatId), w.modelId);
  // Title and model together.
  const both = await patch(w.user, chatId, { title: 'Both', llm: other });
  assert.deepEqual(both.json(), { id: chatId, title: 'Both', llm: other });
  assert.equal(await chatModel(chatId), other);
});

test('a switch while an answer is written is allowed: that answer keeps the model it began with', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const first = w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'slow [[slow:20]] [[long:30]]' });
  await waitFor(async () =>
    (await db().selectFrom('chatbot_schema.response').select('txstatus').where('idchat', '=', chatId).executeTakeFirst())?.txstatus === 'streaming'
      ? true
      : undefined,
  );
  assert.equal((await patch(w.user, chatId, { llm: other })).statusCode, 200);
  assert.equal(parseSse((await first).body).at(-1)?.event, 'done');
  await ask(chatId, 'next');
  assert.deepEqual(await answerModels(chatId), [w.modelId, other]);
});

test('regenerate may ask another model for that one answer; the chat keeps its model', async () => {
  const chatId = await newChat(w.user, w.modelId);
  await ask(chatId, 'question');
  const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/regenerate`, { llm: other })).body);
  assert.equal(events.at(-1)?.event, 'done');
  assert.deepEqual(await answerModels(chatId), [w.modelId, other]);
  assert.equal(await chatModel(chatId), w.modelId);
  const off = await addModel(w.t.database, w.llm.baseUrl, 'Off for regenerate', false);
  const refused = await w.user.postJson(`/api/chats/${chatId}/regenerate`, { llm: off });
  assert.equal(refused.statusCode, 409);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/regenerate`, { llm: 'x' })).statusCode, 400);
  assert.deepEqual(await answerModels(chatId), [w.modelId, other], 'nothing stored for the refused ones');
});

test('a chat whose model was disabled can be switched to another and continued', async () => {
  const lapsed = await addModel(w.t.database, w.llm.baseUrl, 'Lapsing');
  const chatId = await newChat(w.user, lapsed);
  await ask(chatId, 'before');
  await setModelEnabled(db(), lapsed, false);
  const page = (await w.user.get(`/chat/${chatId}`)).body;
  assert.match(page, new RegExp(`<option value="${lapsed}" disabled selected>Lapsing \\(unavailable\\)</option>`));
  assert.doesNotMatch(page, /id="composer"/);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'refused' })).statusCode, 409);
  assert.equal((await patch(w.user, chatId, { llm: w.modelId })).statusCode, 200);
  assert.match((await w.user.get(`/chat/${chatId}`)).body, /id="composer"/);
  await ask(chatId, 'after');
  assert.deepEqual(await answerModels(chatId), [lapsed, w.modelId]);
});
