import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp } from '../../test/app.ts';
import { type ChatWorld, newChat, startChatWorld } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { renameChat } from './chat-queries.ts';

/** The chat page's data (chatPageData: the sidebar, the picker and the current chat, read with the session check). */
let w: ChatWorld;
before(async () => {
  w = await startChatWorld();
});
after(() => w.close());

test('GET /chat lists only my chats, newest first, and the enabled models', async () => {
  const mine = [await newChat(w.user, w.modelId), await newChat(w.user, w.modelId)];
  await renameChat(w.t.database.db, mine[0] as number, 'First of mine');
  await renameChat(w.t.database.db, mine[1] as number, 'Second of mine');
  const theirs = await newChat(w.admin, w.modelId);
  await renameChat(w.t.database.db, theirs, 'Not yours');
  const page = await w.user.get('/chat');
  assert.equal(page.statusCode, 200);
  assert.ok(page.body.indexOf('Second of mine') < page.body.indexOf('First of mine'), 'newest first');
  assert.ok(!page.body.includes('Not yours'));
  assert.match(page.body, new RegExp(`<option value="${w.modelId}" selected>Fake echo</option>`), 'the only model is preselected');
});

test('GET /chat/:id shows my chat with its model; another user’s chat or none is a 404', async () => {
  const chat = await newChat(w.user, w.modelId);
  await renameChat(w.t.database.db, chat, 'Open me');
  const page = await w.user.get(`/chat/${chat}`);
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<h1 class="chat-title" id="chat-title">Open me<\/h1>/);
  assert.match(page.body, new RegExp(`<option value="${w.modelId}" selected>Fake echo</option></select>`), 'the picker shows the chat’s model');
  assert.equal((await w.admin.get(`/chat/${chat}`)).statusCode, 404);
  assert.equal((await w.user.get('/chat/999999')).statusCode, 404);
});

test('a chat whose model was disabled stays readable, read-only', async () => {
  const chat = await newChat(w.user, w.modelId);
  await w.t.database.db.updateTable('chatbot_schema.llm').set({ is_enabled: false }).where('idllm', '=', w.modelId).execute();
  try {
    const page = await w.user.get(`/chat/${chat}`);
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /is no longer available\. Pick another model above to\s+continue this chat/);
  } finally {
    await w.t.database.db.updateTable('chatbot_schema.llm').set({ is_enabled: true }).where('idllm', '=', w.modelId).execute();
  }
});

test('a signed-in GET /chat is one database statement: the page data is read with the session check', async () => {
  let statements = 0;
  const counting = w.t.database.db.withPlugin({
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      statements++;
      return result;
    },
  });
  const second = await startTestApp({}, { ...w.t.database, db: counting, close: async () => {} });
  try {
    const c = new TestClient(second.app);
    await c.login('bob@example.com');
    await c.get('/chat'); // the first visit may write last_seen; the next ones within a minute do not
    statements = 0;
    const page = await c.get('/chat');
    assert.equal(page.statusCode, 200);
    assert.equal(statements, 1);
  } finally {
    await second.close();
  }
});
