import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';

let w: ChatWorld;
before(async () => {
  w = await startChatWorld();
});
after(() => w.close());

test('deactivating a user stops their running answer at its next flush, through the database, and their live session is out', async () => {
  const chatId = await newChat(w.user, w.modelId);
  // 200 words 50 ms apart: ten seconds if nothing stops it.
  const streaming = w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'talk slowly [[slow:50]] [[long:200]]' });
  const row = await waitFor(async () => {
    const r = await w.t.database.db.selectFrom('chatbot_schema.response').select(['idresponse', 'txstatus']).where('idchat', '=', chatId).executeTakeFirst();
    return r?.txstatus === 'streaming' ? r : undefined;
  });
  const bob = await w.t.database.db
    .selectFrom('chatbot_schema.app_user')
    .select('idappuser')
    .where('txemail', '=', 'bob@example.com')
    .executeTakeFirstOrThrow();
  const started = Date.now();
  const res = await w.admin.post(`/admin/users/${bob.idappuser}/deactivate`);
  assert.equal(res.statusCode, 303);
  const events = parseSse((await streaming).body);
  assert.ok(Date.now() - started < 8_000, 'stopped well before the answer would have ended');
  assert.equal(events.at(-1)?.data.status, 'stopped');
  const stored = await w.t.database.db
    .selectFrom('chatbot_schema.response')
    .select('txstatus')
    .where('idresponse', '=', row.idresponse)
    .executeTakeFirstOrThrow();
  assert.equal(stored.txstatus, 'stopped');
  const next = await w.user.get('/chat');
  assert.match(String(next.headers.location), /^\/login/);
  const api = await w.user.postJson('/api/chats', { llm: w.modelId });
  // Refused either by the CSRF check (its token was bound to the deleted session) or, with a fresh token, the guard.
  assert.ok(api.statusCode === 401 || api.statusCode === 403, `the API refuses the old session too (${api.statusCode})`);
  const chats = await w.t.database.db.selectFrom('chatbot_schema.chat').select('idchat').where('idappuser', '=', bob.idappuser).execute();
  assert.equal(chats.length, 1, 'no chat was made after the deactivation');
});
