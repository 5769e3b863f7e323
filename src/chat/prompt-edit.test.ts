import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, tokensText, waitFor } from '../../test/chat-fixtures.ts';
import { setModelEnabled } from '../llm/llm-queries.ts';

// Edit and resend (POST /api/chats/:id/messages/:idmessage/edit, migration 026's edit_prompt): the prompt is replaced,
// what came after it leaves the chat, a new answer streams as for a new message; 409 while an answer is in flight.

let w: ChatWorld;
before(async () => {
  w = await startChatWorld({ MAX_CONCURRENT_GENERATIONS: '10' });
});
after(() => w.close());

const db = () => w.t.database.db;
const editUrl = (chatId: number, messageId: number) => `/api/chats/${chatId}/messages/${messageId}/edit`;
const sentToModel = () => (w.llm.lastRequest as { messages: Array<{ role: string; content: string }> }).messages;

async function ask(chatId: number, content: string) {
  const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content })).body);
  assert.equal(events.at(-1)?.event, 'done');
  return events;
}

const messagesOf = async (chatId: number) =>
  (await db().selectFrom('chatbot_schema.message').select(['idmessage', 'txmessage']).where('idchat', '=', chatId).orderBy('idmessage').execute()).map((m) => ({
    id: m.idmessage,
    text: m.txmessage,
  }));
const responsesOf = (chatId: number) =>
  db().selectFrom('chatbot_schema.response').select(['idresponse', 'idmessage', 'txstatus']).where('idchat', '=', chatId).orderBy('idresponse').execute();

type Usage = { nprompts: number; nresponses: number };
async function usageOfUser(): Promise<Usage> {
  const { rows } = await sql<Usage>`
    SELECT coalesce(sum(u.nprompts), 0)::int AS nprompts, coalesce(sum(u.nresponses), 0)::int AS nresponses
    FROM chatbot_schema.usage_day_user u JOIN chatbot_schema.app_user a ON a.idappuser = u.idappuser WHERE a.txemail = 'bob@example.com'`.execute(db());
  return rows[0] ?? { nprompts: 0, nresponses: 0 };
}

async function chatOfThree() {
  const chatId = await newChat(w.user, w.modelId);
  for (const text of ['one', 'two', 'three']) await ask(chatId, text);
  return { chatId, messages: await messagesOf(chatId) };
}

test('the prompt is replaced, later turns leave the chat, a new answer streams; the statistics keep their counts', async () => {
  const { chatId, messages } = await chatOfThree();
  const before = await usageOfUser();
  const second = messages[1]!;
  const res = await w.user.postJson(editUrl(chatId, second.id), { content: 'two, better [[echo-history]]' });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const events = parseSse(res.body);
  assert.equal(events[0]?.event, 'start');
  assert.equal(events.at(-1)?.event, 'done');
  assert.ok(tokensText(events).length > 0);
  const { idmessage, idresponse } = events.at(-1)!.data as { idmessage: number; idresponse: number };

  const after = await messagesOf(chatId);
  assert.deepEqual(
    after.map((m) => m.text),
    ['one', 'two, better [[echo-history]]'],
  );
  assert.equal(after[0]?.id, messages[0]?.id, 'the turns before it are untouched');
  assert.equal(after[1]?.id, idmessage, 'the edited prompt is the chat’s newest');
  assert.deepEqual(
    (await responsesOf(chatId)).map((r) => [r.idmessage, r.txstatus]),
    [
      [messages[0]!.id, 'complete'],
      [idmessage, 'complete'],
    ],
  );
  assert.deepEqual(
    sentToModel().map((m) => [m.role, m.content.slice(0, 30)]),
    [
      ['user', 'one'],
      ['assistant', sentToModel()[1]!.content.slice(0, 30)],
      ['user', 'two, better [[echo-history]]'],
    ],
    'the model is sent the turns before the edited one, then the new text',
  );
  const api = (await w.user.get(`/api/chats/${chatId}`)).json() as { turns: Array<{ idmessage: number; response: { idresponse: number } }> };
  assert.deepEqual(
    api.turns.map((t) => [t.idmessage, t.response.idresponse]),
    [
      [messages[0]!.id, api.turns[0]!.response.idresponse],
      [idmessage, idresponse],
    ],
  );
  // Deleted turns are not subtracted: the edit adds one prompt and one answer to what was counted.
  assert.deepEqual(await usageOfUser(), { nprompts: before.nprompts + 1, nresponses: before.nresponses + 1 });
});

test('editing while an answer is being written is refused with 409 and changes nothing', async () => {
  const { chatId, messages } = await chatOfThree();
  const running = w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'slow [[slow:20]] [[long:30]]' });
  await waitFor(async () => ((await responsesOf(chatId)).at(-1)?.txstatus === 'streaming' ? true : undefined));
  const before = { messages: await messagesOf(chatId), responses: await responsesOf(chatId) };
  const res = await w.user.postJson(editUrl(chatId, messages[0]!.id), { content: 'changed my mind' });
  assert.equal(res.statusCode, 409);
  assert.match(res.json().error, /still being generated in this chat/);
  assert.deepEqual(await messagesOf(chatId), before.messages);
  assert.deepEqual(await responsesOf(chatId), before.responses);
  assert.equal(parseSse((await running).body).at(-1)?.event, 'done', 'the answer in flight finishes');
});

test('a refused edit (the model was disabled) deletes nothing: the refusal is decided with the edit', async () => {
  const lapsing = await addModel(w.t.database, w.llm.baseUrl, 'Lapsing for edit');
  const chatId = await newChat(w.user, lapsing);
  await ask(chatId, 'first');
  await ask(chatId, 'second');
  const before = { messages: await messagesOf(chatId), responses: await responsesOf(chatId), usage: await usageOfUser() };
  await setModelEnabled(db(), lapsing, false);
  const res = await w.user.postJson(editUrl(chatId, before.messages[0]!.id), { content: 'edited' });
  assert.equal(res.statusCode, 409);
  assert.match(res.json().error, /not available any more/);
  assert.deepEqual(await messagesOf(chatId), before.messages);
  assert.deepEqual(await responsesOf(chatId), before.responses);
  assert.deepEqual(await usageOfUser(), before.usage);
});

test('only the owner, only a message of that chat, only a valid body', async () => {
  const { chatId, messages } = await chatOfThree();
  const other = await chatOfThree();
  const first = messages[0]!.id;
  const refusals: Array<[Promise<{ statusCode: number; body: string }>, number, RegExp]> = [
    [w.admin.postJson(editUrl(chatId, first), { content: 'not mine' }), 404, /Chat not found/],
    [w.user.postJson(editUrl(chatId, other.messages[0]!.id), { content: 'wrong chat' }), 404, /Message not found/],
    [w.user.postJson(editUrl(chatId, 2_000_000_000), { content: 'no such message' }), 404, /Message not found/],
    [w.user.postJson(editUrl(chatId, first), { content: '   ' }), 400, /empty/],
    [w.user.postJson(editUrl(chatId, first), { content: 'x'.repeat(w.t.config.MAX_PROMPT_CHARS + 1) }), 400, /too long/],
    [w.user.postJson(editUrl(chatId, first), { content: 'ok', extra: 1 }), 400, /./],
    [w.user.postJson(editUrl(chatId, first), {}), 400, /content is required/],
    [w.user.postJson(`/api/chats/${chatId}/messages/abc/edit`, { content: 'ok' }), 404, /Not found/],
  ];
  for (const [pending, status, message] of refusals) {
    const res = await pending;
    assert.equal(res.statusCode, status, res.body);
    assert.match(res.body, message);
  }
  assert.deepEqual(await messagesOf(chatId), messages, 'nothing changed');
  const noCsrf = await w.user.postJson(editUrl(chatId, first), { content: 'forged' }, { 'x-csrf-token': 'wrong' });
  assert.equal(noCsrf.statusCode, 403);
  assert.deepEqual(await messagesOf(chatId), messages);
});

test('edits, a prompt and a regenerate at once: exactly one is answered, the others get 409 (bites only on PostgreSQL)', async () => {
  const { chatId, messages } = await chatOfThree();
  const requests = [
    w.user.postJson(editUrl(chatId, messages[0]!.id), { content: 'edit A [[slow:5]] [[long:20]]' }),
    w.user.postJson(editUrl(chatId, messages[1]!.id), { content: 'edit B [[slow:5]] [[long:20]]' }),
    w.user.postJson(editUrl(chatId, messages[1]!.id), { content: 'edit C [[slow:5]] [[long:20]]' }),
    w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'new prompt [[slow:5]] [[long:20]]' }),
    w.user.postJson(`/api/chats/${chatId}/regenerate`, {}),
  ];
  const answers = await Promise.all(requests);
  assert.deepEqual(answers.map((r) => r.statusCode).sort(), [200, 409, 409, 409, 409], answers.map((r) => r.body.slice(0, 80)).join('\n'));
  const winner = answers.findIndex((r) => r.statusCode === 200);
  const stored = (await messagesOf(chatId)).map((m) => m.text);
  const expected = [
    ['edit A [[slow:5]] [[long:20]]'],
    ['one', 'edit B [[slow:5]] [[long:20]]'],
    ['one', 'edit C [[slow:5]] [[long:20]]'],
    ['one', 'two', 'three', 'new prompt [[slow:5]] [[long:20]]'],
    ['one', 'two', 'three'],
  ][winner];
  assert.deepEqual(stored, expected, `request ${winner} won`);
  const responses = await responsesOf(chatId);
  assert.equal(responses.filter((r) => r.txstatus === 'complete').length, stored.length + (winner === 4 ? 1 : 0));
});
