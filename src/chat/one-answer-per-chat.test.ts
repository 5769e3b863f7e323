import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import { THINKING_PLACEHOLDER } from './chat-queries.ts';

// One answer per chat at a time (migration 006): a second prompt or regenerate while one is in flight is a 409,
// decided after the chat's row is locked, so it holds however many requests arrive at once, in any process.

let w: ChatWorld;
before(async () => {
  w = await startChatWorld({ MAX_CONCURRENT_GENERATIONS: '10' });
});
after(() => w.close());

const responsesOf = (chatId: number) =>
  w.t.database.db.selectFrom('chatbot_schema.response').select(['idresponse', 'txstatus']).where('idchat', '=', chatId).orderBy('idresponse').execute();
const messagesOf = (chatId: number) => w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', chatId).execute();
const sentToModel = () => (w.llm.lastRequest as { messages: Array<{ role: string; content: string }> }).messages;

test('4 simultaneous regenerates of one chat: exactly one starts, the others get 409 (bites only on PostgreSQL)', async () => {
  const chatId = await newChat(w.user, w.modelId);
  assert.equal(parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'again [[slow:10]] [[long:30]]' })).body).at(-1)?.event, 'done');
  const answers = await Promise.all([1, 2, 3, 4].map(() => w.user.postJson(`/api/chats/${chatId}/regenerate`, {})));
  assert.deepEqual(answers.map((r) => r.statusCode).sort(), [200, 409, 409, 409]);
  for (const r of answers.filter((a) => a.statusCode === 409)) assert.match(r.json().error, /still being generated/);
  assert.equal((await responsesOf(chatId)).length, 2, 'the first answer and one regenerated answer');
});

test('4 simultaneous prompts in one chat: exactly one is stored and answered, the others get 409 (bites only on PostgreSQL)', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const answers = await Promise.all(
    [1, 2, 3, 4].map((i) => w.user.postJson(`/api/chats/${chatId}/messages`, { content: `prompt ${i} [[slow:5]] [[long:20]]` })),
  );
  assert.deepEqual(answers.map((r) => r.statusCode).sort(), [200, 409, 409, 409]);
  assert.equal((await messagesOf(chatId)).length, 1, 'refused prompts are not stored');
});

test('a prompt sent while an answer streams gets 409 with a message; the model never sees the placeholder', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const first = w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'slow [[slow:20]] [[long:30]]' });
  await waitFor(async () => ((await responsesOf(chatId)).at(-1)?.txstatus === 'streaming' ? true : undefined));
  const second = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'are you there?' });
  assert.equal(second.statusCode, 409);
  assert.match(second.json().error, /still being generated in this chat/);
  assert.equal((await messagesOf(chatId)).length, 1);
  assert.equal(parseSse((await first).body).at(-1)?.event, 'done');

  const third = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'now [[echo-history]]' });
  assert.equal(third.statusCode, 200);
  const sent = sentToModel();
  assert.deepEqual(
    sent.map((m) => m.role),
    ['user', 'assistant', 'user'],
  );
  assert.ok(!sent.some((m) => m.content.includes(THINKING_PLACEHOLDER)));
});

test('an earlier answer that ended before its first token (still holding the placeholder) is not sent to the model', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const { idmessage } = await w.t.database.db
    .insertInto('chatbot_schema.message')
    .values({ idchat: chatId, txmessage: 'before a crash' })
    .returning('idmessage')
    .executeTakeFirstOrThrow();
  await w.t.database.db
    .insertInto('chatbot_schema.response')
    .values({ idchat: chatId, idmessage, idllm: w.modelId, txmarkdown: THINKING_PLACEHOLDER, txcontent: THINKING_PLACEHOLDER, txstatus: 'interrupted' })
    .execute();
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'again [[echo-history]]' })).statusCode, 200);
  const sent = sentToModel();
  assert.deepEqual(
    sent.map((m) => m.role),
    ['user', 'user'],
  );
  assert.ok(!sent.some((m) => m.content.includes(THINKING_PLACEHOLDER)));
});
