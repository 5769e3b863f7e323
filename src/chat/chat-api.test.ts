import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, tokensText, waitFor } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { titleFrom } from './chat-queries.ts';

let w: ChatWorld;
before(async () => {
  w = await startChatWorld({ LLM_TIMEOUT_S: '1', MAX_PROMPT_CHARS: '2000' });
});
after(() => w.close());

async function responseRow(id: number) {
  return w.t.database.db.selectFrom('chatbot_schema.response').selectAll().where('idresponse', '=', id).executeTakeFirstOrThrow();
}

describe('the streaming path', () => {
  test("a message is stored, answered as SSE token events, and the answer is stored the seed's way", async () => {
    const chatId = await newChat(w.user, w.modelId);
    const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'Hello **there**' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff'); // the stream keeps the security headers
    assert.equal(res.headers['cache-control'], 'no-store');
    const events = parseSse(res.body);
    assert.equal(events[0]?.event, 'start');
    assert.ok(events.filter((e) => e.event === 'token').length > 5);
    const done = events.at(-1);
    assert.equal(done?.event, 'done');
    assert.equal(events.filter((e) => e.event === 'done' || e.event === 'error').length, 1);
    assert.ok(done);
    const { idmessage, idresponse } = done.data as { idmessage: number; idresponse: number };

    const message = await w.t.database.db.selectFrom('chatbot_schema.message').selectAll().where('idmessage', '=', idmessage).executeTakeFirstOrThrow();
    assert.equal(message.txmessage, 'Hello **there**');
    assert.equal(message.idchat, chatId);
    const row = await responseRow(idresponse);
    assert.equal(row.txstatus, 'complete');
    assert.equal(row.txmarkdown, tokensText(events));
    assert.match(row.txmarkdown ?? '', /You said: Hello \*\*there\*\*/);
    assert.match(row.txcontent ?? '', /<strong>there<\/strong>/);
    assert.equal(row.idllm, w.modelId);
    assert.ok(row.tinf_start && row.tinf_end && row.tfirst_token);
    assert.ok(row.tinf_start <= row.tfirst_token && row.tfirst_token <= row.tinf_end);
    assert.ok((row.nprompt_tokens ?? 0) > 0 && (row.ncompletion_tokens ?? 0) > 0);
    assert.equal(done?.data.html, row.txcontent);

    const chat = await w.user.get(`/api/chats/${chatId}`);
    const body = chat.json() as { title: string; llm: { name: string }; turns: Array<{ content: string; response: { status: string; html: string } }> };
    assert.equal(body.title, 'Hello **there**');
    assert.equal(body.llm.name, 'Fake echo');
    assert.equal(body.turns[0]?.response.status, 'complete');
  });

  test('the model receives the chat history', async () => {
    const chatId = await newChat(w.user, w.modelId);
    await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'first question' });
    await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'second [[echo-history]]' });
    const sent = (w.llm.lastRequest as { messages: Array<{ role: string; content: string }> }).messages;
    assert.deepEqual(
      sent.map((m) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.equal(sent[0]?.content, 'first question');
    assert.match(sent[1]?.content ?? '', /You said: first question/);
  });

  test('markdown from the model never carries script', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const attack = '<img src=x onerror=alert(1)> [click](javascript:alert(1)) <svg><script>alert(1)</script></svg>';
    const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: attack })).body);
    const html = String(events.at(-1)?.data.html);
    // Shown as text, never as markup: no such tags, no handler or javascript: URL inside any tag.
    assert.doesNotMatch(html, /<img|<svg|<script/i);
    assert.doesNotMatch(html, /<[^>]*(onerror|javascript:)/i);
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  });
});

describe('failures are states', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['an HTTP error', '[[fail]]', /had a problem \(HTTP 500\)/],
    ['a stalled stream (idle timeout)', '[[stall]]', /did not answer within/],
    ['a malformed stream', '[[malformed]]', /broken answer/],
    ['a dropped connection', '[[drop]]', /broken answer/],
  ];
  for (const [label, directive, message] of cases) {
    test(`${label} ends as status error with an error event and the text so far`, async () => {
      const chatId = await newChat(w.user, w.modelId);
      const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: `go ${directive}` });
      const events = parseSse(res.body);
      const last = events.at(-1);
      assert.equal(last?.event, 'error');
      assert.match(String(last?.data.message), message);
      const row = await responseRow(Number(last?.data.idresponse));
      assert.equal(row.txstatus, 'error');
      assert.match(row.txerror ?? '', message);
      assert.equal(row.txmarkdown, tokensText(events));
      assert.ok(row.tinf_end);
    });
  }

  test('an unreachable model server is an error, not a hang', async () => {
    const deadModel = await addModel(w.t.database, 'http://127.0.0.1:9/v1', 'Dead');
    const chatId = await newChat(w.user, deadModel);
    const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'anyone?' })).body);
    assert.equal(events.at(-1)?.event, 'error');
    assert.match(String(events.at(-1)?.data.message), /Could not reach/);
  });

  test('Stop ends the answer as stopped, keeping what arrived', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const streaming = w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'talk slowly [[slow:50]] [[long:200]]' });
    const row = await waitFor(async () => {
      const r = await w.t.database.db.selectFrom('chatbot_schema.response').select(['idresponse', 'txstatus']).where('idchat', '=', chatId).executeTakeFirst();
      return r?.txstatus === 'streaming' ? r : undefined;
    });
    const stop = await w.user.postJson(`/api/chats/${chatId}/responses/${row.idresponse}/stop`, {});
    assert.equal(stop.statusCode, 200);
    const events = parseSse((await streaming).body);
    assert.equal(events.at(-1)?.event, 'done');
    assert.equal(events.at(-1)?.data.status, 'stopped');
    const stored = await responseRow(row.idresponse);
    assert.equal(stored.txstatus, 'stopped');
    assert.equal(stored.txmarkdown, tokensText(events));
    assert.ok((stored.txmarkdown ?? '').length > 0);
  });

  test('regenerate answers the last prompt again; the chat shows the new answer', async () => {
    const chatId = await newChat(w.user, w.modelId);
    await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'oops [[fail]]' });
    const res = await w.user.postJson(`/api/chats/${chatId}/regenerate`, {});
    const events = parseSse(res.body);
    // the directive is still in the prompt, so it fails again: but as a new response row
    assert.equal(events.at(-1)?.event, 'error');
    const rows = await w.t.database.db.selectFrom('chatbot_schema.response').select('idresponse').where('idchat', '=', chatId).execute();
    assert.equal(rows.length, 2);
    const chat = (await w.user.get(`/api/chats/${chatId}`)).json() as { turns: Array<{ response: { idresponse: number } }> };
    assert.equal(chat.turns.length, 1);
    assert.equal(chat.turns[0]?.response.idresponse, Math.max(...rows.map((r) => r.idresponse)));
  });
});

describe('limits and bad input', () => {
  test('prompt size, empty prompt, unknown fields, wrong type: 4xx with a reason, nothing stored', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const tooLong = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'x'.repeat(2001) });
    assert.equal(tooLong.statusCode, 400);
    assert.match(tooLong.json().error, /too long: at most 2000/);
    assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: '   ' })).statusCode, 400);
    assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'hi', extra: 1 })).statusCode, 400);
    assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 42 })).statusCode, 400);
    assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, 'not an object')).statusCode, 400);
    const form = await w.user.post(`/api/chats/${chatId}/messages`, { content: 'hi' }, { 'x-csrf-token': w.user.csrf });
    assert.ok(form.statusCode >= 400 && form.statusCode < 500);
    const n = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', chatId).execute();
    assert.equal(n.length, 0);
  });

  test('new chats need an existing, enabled model', async () => {
    assert.equal((await w.user.postJson('/api/chats', { llm: 999999 })).statusCode, 409);
    const disabled = await addModel(w.t.database, w.llm.baseUrl, 'Off', false);
    assert.equal((await w.user.postJson('/api/chats', { llm: disabled })).statusCode, 409);
    assert.equal((await w.user.postJson('/api/chats', { llm: 'one' })).statusCode, 400);
  });

  test('rename and delete', async () => {
    const chatId = await newChat(w.user, w.modelId);
    await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'to be deleted' });
    const renamed = await w.user.app.inject({
      method: 'PATCH',
      url: `/api/chats/${chatId}`,
      payload: { title: '  My title  ' },
      headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
    });
    assert.equal(renamed.statusCode, 200);
    assert.equal(renamed.json().title, 'My title');
    const lying = await w.user.app.inject({
      method: 'PATCH',
      url: `/api/chats/${chatId}`,
      payload: { title: 'Budget \u202efdp.exe' },
      headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
    });
    assert.equal(lying.statusCode, 400);
    assert.match(lying.json().message ?? lying.body, /text-direction/);
    assert.equal(titleFrom('Hello \u202eworld\u2066 again'), 'Hello world again');
    const del = await w.user.app.inject({
      method: 'DELETE',
      url: `/api/chats/${chatId}`,
      headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
    });
    assert.equal(del.statusCode, 204);
    assert.equal((await w.user.get(`/api/chats/${chatId}`)).statusCode, 404);
    const left = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', chatId).execute();
    assert.equal(left.length, 0);
  });
});

describe('ownership and CSRF', () => {
  test('another user gets 404 on every chat route; nothing changes', async () => {
    const chatId = await newChat(w.admin, w.modelId);
    const first = parseSse((await w.admin.postJson(`/api/chats/${chatId}/messages`, { content: 'private' })).body);
    const idresponse = Number(first.at(-1)?.data.idresponse);
    const headers = { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf };
    const attempts = [
      await w.user.get(`/api/chats/${chatId}`),
      await w.user.get(`/chat/${chatId}`),
      await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'mine now' }),
      await w.user.postJson(`/api/chats/${chatId}/regenerate`, {}),
      await w.user.postJson(`/api/chats/${chatId}/responses/${idresponse}/stop`, {}),
      await w.t.app.inject({ method: 'PATCH', url: `/api/chats/${chatId}`, payload: { title: 'x' }, headers }),
      await w.t.app.inject({ method: 'DELETE', url: `/api/chats/${chatId}`, headers }),
    ];
    assert.deepEqual(
      attempts.map((r) => r.statusCode),
      attempts.map(() => 404),
    );
    const chat = (await w.admin.get(`/api/chats/${chatId}`)).json() as { title: string; turns: unknown[] };
    assert.equal(chat.title, 'private');
    assert.equal(chat.turns.length, 1);
  });

  test('a response id from another chat is 404 even for the owner of the chat in the URL', async () => {
    const mine = await newChat(w.user, w.modelId);
    const theirs = await newChat(w.admin, w.modelId);
    const events = parseSse((await w.admin.postJson(`/api/chats/${theirs}/messages`, { content: 'x' })).body);
    const res = await w.user.postJson(`/api/chats/${mine}/responses/${Number(events.at(-1)?.data.idresponse)}/stop`, {});
    assert.equal(res.statusCode, 404);
  });

  test('JSON API calls without the CSRF header are 403 and store nothing', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'forged' }, { 'x-csrf-token': '' });
    assert.equal(res.statusCode, 403);
    const n = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', chatId).execute();
    assert.equal(n.length, 0);
    const anon = new TestClient(w.t.app);
    assert.equal((await anon.get(`/api/chats/${chatId}`)).statusCode, 401);
  });
});
