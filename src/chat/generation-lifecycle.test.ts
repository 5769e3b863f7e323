import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp } from '../../test/app.ts';
import { type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import { testDbKind } from '../../test/database.ts';

let w: ChatWorld;
before(async () => {
  w = await startChatWorld({ MAX_CONCURRENT_GENERATIONS: '1' });
});
after(() => w.close());

const statusOf = async (chatId: number) =>
  w.t.database.db
    .selectFrom('chatbot_schema.response')
    .select(['idresponse', 'txstatus', 'txmarkdown'])
    .where('idchat', '=', chatId)
    .orderBy('idresponse', 'desc')
    .executeTakeFirst();

test('the per-user limit on concurrent answers answers 429 with a reason', async () => {
  const a = await newChat(w.user, w.modelId);
  const b = await newChat(w.user, w.modelId);
  const first = w.user.postJson(`/api/chats/${a}/messages`, { content: 'slow [[slow:20]] [[long:30]]' });
  await waitFor(async () => ((await statusOf(a))?.txstatus === 'streaming' ? true : undefined));
  const second = await w.user.postJson(`/api/chats/${b}/messages`, { content: 'me too' });
  assert.equal(second.statusCode, 429);
  assert.match(second.json().error, /already have 1 answer/);
  // another user is not affected by this user's limit
  const other = await newChat(w.admin, w.modelId);
  assert.equal((await w.admin.postJson(`/api/chats/${other}/messages`, { content: 'hello' })).statusCode, 200);
  assert.equal(parseSse((await first).body).at(-1)?.event, 'done');
  const messages = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', b).execute();
  assert.equal(messages.length, 0);
});

test('simultaneous prompts of one user: exactly the limit is let through, the rest get 429', async () => {
  const chats = await Promise.all([1, 2, 3, 4].map(() => newChat(w.user, w.modelId)));
  const answers = await Promise.all(chats.map((id) => w.user.postJson(`/api/chats/${id}/messages`, { content: 'at once [[slow:5]] [[long:20]]' })));
  const statuses = answers.map((r) => r.statusCode).sort();
  assert.deepEqual(statuses, [200, 429, 429, 429]); // MAX_CONCURRENT_GENERATIONS=1 in this file
  const stored = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', 'in', chats).execute();
  assert.equal(stored.length, 1, 'refused prompts are not stored');
});

test('a client that disconnects does not stop the answer: it is completed and stored', async () => {
  await w.t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = w.t.app.server.address();
  assert.ok(address && typeof address === 'object');
  const chatId = await newChat(w.user, w.modelId);
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${address.port}/api/chats/${chatId}/messages`, {
    method: 'POST',
    body: JSON.stringify({ content: 'keep going [[slow:10]] [[long:40]]' }),
    headers: { 'content-type': 'application/json', cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body?.getReader();
  await reader?.read(); // the start event
  controller.abort();
  const row = await waitFor(async () => {
    const r = await statusOf(chatId);
    return r && r.txstatus !== 'pending' && r.txstatus !== 'streaming' ? r : undefined;
  });
  assert.equal(row.txstatus, 'complete');
  assert.equal((row.txmarkdown ?? '').split(/\s+/).filter(Boolean).length, 40);
});

test('answers left streaming by a crashed process become interrupted at the next start, keeping their text', async () => {
  const chatId = await newChat(w.user, w.modelId);
  const { idmessage } = await w.t.database.db
    .insertInto('chatbot_schema.message')
    .values({ idchat: chatId, txmessage: 'before the crash' })
    .returning('idmessage')
    .executeTakeFirstOrThrow();
  const stale = await w.t.database.db
    .insertInto('chatbot_schema.response')
    .values({
      idchat: chatId,
      idmessage,
      idllm: w.modelId,
      txmarkdown: 'half an ans',
      txcontent: '',
      txstatus: 'streaming',
      tinf_start: sql`now() - interval '5 minutes'`,
      dtheartbeat: sql`now() - interval '4 minutes'`,
    })
    .returning('idresponse')
    .executeTakeFirstOrThrow();
  // A live answer of another process (fresh heartbeat) must be left alone. On PGlite there is only ever one process
  // (the data directory is locked), so there every answer still active at start is from a dead one.
  const live = await w.t.database.db
    .insertInto('chatbot_schema.response')
    .values({ idchat: chatId, idmessage, idllm: w.modelId, txmarkdown: 'live', txstatus: 'streaming', tinf_start: sql`now()`, dtheartbeat: sql`now()` })
    .returning('idresponse')
    .executeTakeFirstOrThrow();

  const second = await startTestApp({}, w.t.database); // a new process starting on the same database
  try {
    const rows = await w.t.database.db
      .selectFrom('chatbot_schema.response')
      .select(['idresponse', 'txstatus', 'txmarkdown', 'tinf_end'])
      .where('idchat', '=', chatId)
      .execute();
    const byId = new Map(rows.map((r) => [r.idresponse, r]));
    assert.equal(byId.get(stale.idresponse)?.txstatus, 'interrupted');
    assert.equal(byId.get(stale.idresponse)?.txmarkdown, 'half an ans');
    assert.ok(byId.get(stale.idresponse)?.tinf_end);
    assert.equal(byId.get(live.idresponse)?.txstatus, testDbKind === 'postgres' ? 'streaming' : 'interrupted');
    const api = (await w.user.get(`/api/chats/${chatId}`)).json() as { turns: Array<{ response: { status: string } }> };
    assert.ok(api.turns.length === 1);
  } finally {
    await second.close();
    await w.t.database.db.updateTable('chatbot_schema.response').set({ txstatus: 'error' }).where('idresponse', '=', live.idresponse).execute();
  }
});
