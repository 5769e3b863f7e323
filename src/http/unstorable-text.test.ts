import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { type ChatWorld, newChat, startChatWorld } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';

/**
 * PostgreSQL's text cannot hold U+0000 (the statement fails: a 500), and the drivers turn a lone surrogate into
 * U+FFFD on the way in (the text silently changes). Both are refused where input enters, with a 400 that says why.
 */
let w: ChatWorld;
let chatId: number;
before(async () => {
  w = await startChatWorld();
  chatId = await newChat(w.user, w.modelId);
});
after(() => w.close());

const messages = () => countRows(w.t.database, 'chatbot_schema.message');

function sendJson(client: TestClient, method: 'POST' | 'PATCH', url: string, rawJson: string): Promise<LightMyRequestResponse> {
  return w.t.app.inject({
    method,
    url,
    payload: rawJson,
    headers: { 'content-type': 'application/json', 'x-csrf-token': client.csrf, cookie: client.cookieHeader() },
  });
}

function assertJson400(res: LightMyRequestResponse, message: RegExp): void {
  assert.equal(res.statusCode, 400, res.body.slice(0, 300));
  assert.match((res.json() as { error: string }).error, message);
}

describe('JSON bodies', () => {
  for (const [label, escaped, message] of [
    ['a NUL character', 'a\\u0000b', /NUL/],
    ['a lone high surrogate', 'a\\ud800b', /not valid Unicode/],
    ['a lone low surrogate', '\\udfffb', /not valid Unicode/],
  ] as const) {
    test(`${label} in a prompt is a 400 with a message, and nothing is stored`, async () => {
      const before = await messages();
      assertJson400(await sendJson(w.user, 'POST', `/api/chats/${chatId}/messages`, `{"content":"${escaped}"}`), message);
      assert.equal(await messages(), before);
    });

    test(`${label} in a chat title is a 400 and the title stays`, async () => {
      assertJson400(await sendJson(w.user, 'PATCH', `/api/chats/${chatId}`, `{"title":"${escaped}"}`), message);
      const chat = await w.user.get(`/api/chats/${chatId}`);
      assert.equal((chat.json() as { title: string }).title, 'New chat');
    });
  }

  test('in a key, or deep inside an array, too', async () => {
    assertJson400(await sendJson(w.user, 'PATCH', `/api/chats/${chatId}`, '{"title":"ok","x\\u0000":1}'), /NUL/);
    assertJson400(await sendJson(w.user, 'POST', '/api/chats', '{"llm":1,"a":[[{"b":["\\u0000"]}]]}'), /NUL/);
  });

  test('a surrogate pair (an emoji written as escapes) is fine', async () => {
    const res = await sendJson(w.user, 'PATCH', `/api/chats/${chatId}`, '{"title":"pair \\ud83d\\ude00"}');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { title: string }).title, 'pair 😀');
  });

  test('invalid UTF-8 bytes in a JSON body are a 400, not silently replaced', async () => {
    const body = Buffer.concat([Buffer.from('{"title":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const res = await w.t.app.inject({
      method: 'PATCH',
      url: `/api/chats/${chatId}`,
      payload: body,
      headers: { 'content-type': 'application/json', 'x-csrf-token': w.user.csrf, cookie: w.user.cookieHeader() },
    });
    assertJson400(res, /UTF-8/);
  });

  test('JSON sent to a form route gets the same refusal, as a page', async () => {
    const visitor = new TestClient(w.t.app);
    await visitor.get('/register');
    const res = await w.t.app.inject({
      method: 'POST',
      url: '/register',
      payload: `{"_csrf":"${visitor.csrf}","username":"N\\u0000","email":"n@example.com","password":"correct horse battery staple"}`,
      headers: { 'content-type': 'application/json', cookie: visitor.cookieHeader() },
    });
    assert.equal(res.statusCode, 400, res.body.slice(0, 300));
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /NUL/);
  });
});

describe('forms', () => {
  for (const [label, encoded] of [
    ['%00', 'Ad%00a'],
    ['a raw NUL byte', 'Ad\u0000a'],
  ] as const) {
    test(`${label} in a form field is a 400 page with a message`, async () => {
      const admin = w.admin;
      await admin.get('/admin/models');
      const res = await w.t.app.inject({
        method: 'POST',
        url: '/admin/models',
        payload: `_csrf=${admin.csrf}&name=${encoded}&baseUrl=http%3A%2F%2Flocalhost%3A1%2Fv1&model=m&apiKey=k${encoded}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
      });
      assert.equal(res.statusCode, 400, res.body.slice(0, 300));
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(res.body, /NUL/);
    });
  }
});

describe('query strings', () => {
  test('a NUL in a query parameter is a 400', async () => {
    const res = await w.user.get(`/api/chats/${chatId}?x=a%00b`);
    assertJson400(res, /NUL/);
  });
});
