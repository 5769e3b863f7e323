import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, tokensText } from '../../test/chat-fixtures.ts';
import type { TestClient } from '../../test/client.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import { SYSTEM_PROMPT_MAX_CHARS } from '../llm/system-prompt.ts';
import { charsOf, systemMessages, withSystemPrompts } from './system-prompts.ts';

// System prompts (migration 026): the admin's per model, sent first; the chat owner's per chat, sent after it; both
// inside MAX_HISTORY_CHARS and never dropped when older turns are.

const MAX_HISTORY_CHARS = 1000;
const MODEL_PROMPT = `You are terse. ${'m'.repeat(284)}`; // 300 characters
const CHAT_PROMPT = `Answer in French. ${'c'.repeat(182)}`; // 200 characters

let w: ChatWorld;
let small: FakeLlm;
let smallModel: number;
before(async () => {
  w = await startChatWorld({ MAX_HISTORY_CHARS: String(MAX_HISTORY_CHARS) });
  small = await startFakeLlm({ maxContextChars: 1500 }); // refuses more than the app may send: a trimming bug fails loudly
  smallModel = await addModel(w.t.database, small.baseUrl, 'Small context');
});
after(async () => {
  await w.close();
  await small.close();
});

type Sent = Array<{ role: string; content: string }>;
const sentTo = (llm: FakeLlm) => (llm.lastRequest as { messages: Sent }).messages;

function patch(client: TestClient, chatId: number, payload: unknown) {
  return client.app.inject({
    method: 'PATCH',
    url: `/api/chats/${chatId}`,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json', cookie: client.cookieHeader(), 'x-csrf-token': client.csrf },
  });
}

async function ask(chatId: number, content: string) {
  const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content });
  assert.equal(res.statusCode, 200, res.body);
  const events = parseSse(res.body);
  assert.equal(events.at(-1)?.event, 'done', JSON.stringify(events.at(-1)));
  return tokensText(events);
}

/** The admin's edit form for the model, as the page posts it (all fields, the system prompt among them). */
async function saveModelForm(modelId: number, name: string, baseUrl: string, systemPrompt: string) {
  await w.admin.get(`/admin/models/${modelId}/edit`);
  return w.admin.post(`/admin/models/${modelId}`, { name, baseUrl, model: 'fake-echo', enabled: 'on', system_prompt: systemPrompt });
}

describe('the model is sent the system prompts first, the model’s then the chat’s', () => {
  test('the admin’s prompt, then the chat’s, then the conversation; both editable and removable', async () => {
    const res = await saveModelForm(w.modelId, 'Fake echo', w.llm.baseUrl, '  Be kind.\nBe brief.  ');
    assert.equal(res.statusCode, 303, res.body);
    const edit = (await w.admin.get(`/admin/models/${w.modelId}/edit`)).body;
    assert.match(edit, /<textarea[^>]*name="system_prompt"[^>]*>Be kind.\nBe brief.<\/textarea>/, 'stored trimmed, shown in the form');

    const chatId = await newChat(w.user, w.modelId);
    await ask(chatId, 'first');
    const set = await patch(w.user, chatId, { system_prompt: 'Answer in <b>French</b>.' });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json(), { id: chatId, system_prompt: 'Answer in <b>French</b>.' });
    assert.equal((await w.user.get(`/api/chats/${chatId}`)).json().system_prompt, 'Answer in <b>French</b>.');
    await ask(chatId, 'second [[echo-history]]');
    assert.deepEqual(
      sentTo(w.llm).map((m) => [m.role, m.content]),
      [
        ['system', 'Be kind.\nBe brief.'],
        ['system', 'Answer in <b>French</b>.'],
        ['user', 'first'],
        ['assistant', sentTo(w.llm)[3]?.content],
        ['user', 'second [[echo-history]]'],
      ],
    );
    const page = (await w.user.get(`/chat/${chatId}`)).body;
    assert.match(page, /<textarea[^>]*id="instructions-input"[^>]*>Answer in &lt;b&gt;French&lt;\/b&gt;.<\/textarea>/, 'the page shows it, escaped');

    // Removing both: an empty string (the form's way) or null.
    assert.equal((await saveModelForm(w.modelId, 'Fake echo', w.llm.baseUrl, '   ')).statusCode, 303);
    assert.deepEqual((await patch(w.user, chatId, { system_prompt: '' })).json(), { id: chatId, system_prompt: null });
    await ask(chatId, 'third [[echo-history]]');
    assert.ok(!sentTo(w.llm).some((m) => m.role === 'system'), 'nothing left to send');
    assert.equal((await patch(w.user, chatId, { system_prompt: null })).statusCode, 200);
  });

  test('a model added with a system prompt keeps it; the audit log says a prompt was set, never what it says', async () => {
    await w.admin.get('/admin/models');
    const res = await w.admin.post('/admin/models', {
      name: 'Added with a prompt',
      baseUrl: w.llm.baseUrl,
      model: 'fake-echo',
      enabled: 'on',
      system_prompt: 'Secret house rules.',
    });
    assert.equal(res.statusCode, 303, res.body);
    const row = await w.t.database.db
      .selectFrom('chatbot_schema.llm')
      .select('system_prompt')
      .where('txshortname', '=', 'Added with a prompt')
      .executeTakeFirstOrThrow();
    assert.equal(row.system_prompt, 'Secret house rules.');
    const audit = (await w.admin.get('/admin/audit')).body;
    assert.match(audit, /added the model “Added with a prompt” \([^)]*with a system prompt\)/);
    assert.doesNotMatch(audit, /Secret house rules/);
  });

  test('a regenerate with another model gets that model’s system prompt, and the chat’s', async () => {
    const other = await addModel(w.t.database, w.llm.baseUrl, 'Other with a prompt');
    assert.equal((await saveModelForm(other, 'Other with a prompt', w.llm.baseUrl, 'Other model rules.')).statusCode, 303);
    const chatId = await newChat(w.user, w.modelId);
    await patch(w.user, chatId, { system_prompt: 'Chat rules.' });
    await ask(chatId, 'question [[echo-history]]');
    assert.deepEqual(
      sentTo(w.llm).filter((m) => m.role === 'system'),
      [{ role: 'system', content: 'Chat rules.' }],
    );
    const again = parseSse((await w.user.postJson(`/api/chats/${chatId}/regenerate`, { llm: other })).body);
    assert.equal(again.at(-1)?.event, 'done');
    assert.deepEqual(sentTo(w.llm).slice(0, 2), [
      { role: 'system', content: 'Other model rules.' },
      { role: 'system', content: 'Chat rules.' },
    ]);
  });

  test('limits and bad input get a 400 with a reason, and change nothing; another user’s chat is a 404', async () => {
    const chatId = await newChat(w.user, w.modelId);
    await patch(w.user, chatId, { system_prompt: 'kept' });
    const cases: Array<[unknown, RegExp]> = [
      ['x'.repeat(SYSTEM_PROMPT_MAX_CHARS + 1), /too long: at most 8,000 characters/],
      [42, /must be text/],
      ['bell \u0007 here', /control characters/],
      [['a'], /must be text/],
    ];
    for (const [value, message] of cases) {
      const res = await patch(w.user, chatId, { system_prompt: value });
      assert.equal(res.statusCode, 400, JSON.stringify(value).slice(0, 40));
      assert.match(res.json().error, message);
    }
    assert.equal((await patch(w.user, chatId, { system_prompt: 'x'.repeat(SYSTEM_PROMPT_MAX_CHARS) })).statusCode, 200, 'the limit itself is fine');
    assert.equal((await patch(w.admin, chatId, { system_prompt: 'mine now' })).statusCode, 404);
    assert.equal((await w.user.get(`/api/chats/${chatId}`)).json().system_prompt, 'x'.repeat(SYSTEM_PROMPT_MAX_CHARS));

    // Shown back inside a <textarea>: markup in it stays text, in the chat page and in the admin's form.
    const hostile = '</textarea><img src=x onerror=alert(1)>';
    assert.equal((await patch(w.user, chatId, { system_prompt: hostile })).statusCode, 200);
    const page = (await w.user.get(`/chat/${chatId}`)).body;
    assert.ok(!page.includes(hostile) && page.includes('&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;'));
    const other = await addModel(w.t.database, w.llm.baseUrl, 'Hostile prompt');
    assert.equal((await saveModelForm(other, 'Hostile prompt', w.llm.baseUrl, hostile)).statusCode, 303);
    const edit = (await w.admin.get(`/admin/models/${other}/edit`)).body;
    assert.ok(!edit.includes(hostile) && edit.includes('&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;'));

    const form = await saveModelForm(w.modelId, 'Fake echo', w.llm.baseUrl, 'y'.repeat(SYSTEM_PROMPT_MAX_CHARS + 1));
    assert.equal(form.statusCode, 400);
    assert.match(form.body, /The system prompt is too long: at most 8,000 characters/);
  });
});

describe('history trimming keeps the system prompts', () => {
  test('the system prompts, then the newest whole turns that fit after them, and always the prompt', async () => {
    assert.equal((await saveModelForm(smallModel, 'Small context', small.baseUrl, MODEL_PROMPT)).statusCode, 303);
    const chatId = await newChat(w.user, smallModel);
    assert.equal((await patch(w.user, chatId, { system_prompt: CHAT_PROMPT })).statusCode, 200);
    const turns: Array<{ prompt: string; answer: string }> = [];
    for (let i = 1; i <= 6; i++) {
      const prompt = `turn ${i} [[long:12]]`;
      turns.push({ prompt, answer: await ask(chatId, prompt) });
    }
    await ask(chatId, '[[echo-history]] last');
    const sent = sentTo(small);
    assert.deepEqual(sent.slice(0, 2), [
      { role: 'system', content: MODEL_PROMPT },
      { role: 'system', content: CHAT_PROMPT },
    ]);
    assert.deepEqual(sent.at(-1), { role: 'user', content: '[[echo-history]] last' });
    const kept = (sent.length - 3) / 2;
    assert.ok(Number.isInteger(kept) && kept >= 1 && kept < turns.length, `${kept} turns kept`);
    assert.deepEqual(
      sent.slice(2, -1),
      turns.slice(-kept).flatMap((t) => [
        { role: 'user', content: t.prompt },
        { role: 'assistant', content: t.answer },
      ]),
    );
    assert.ok(charsOf(sent as never) <= MAX_HISTORY_CHARS, `${charsOf(sent as never)} characters sent`);
    const next = turns.at(-kept - 1);
    assert.ok(next && charsOf(sent as never) + next.prompt.length + next.answer.length > MAX_HISTORY_CHARS, 'the next older turn would not have fitted');
  });

  test('system prompts that fill the budget leave only the prompt, and all three are sent', async () => {
    const chatId = await newChat(w.user, w.modelId);
    assert.equal((await patch(w.user, chatId, { system_prompt: 'z'.repeat(MAX_HISTORY_CHARS) })).statusCode, 200);
    await ask(chatId, 'an earlier question');
    await ask(chatId, 'now [[echo-history]]');
    assert.deepEqual(sentTo(w.llm), [
      { role: 'system', content: 'z'.repeat(MAX_HISTORY_CHARS) },
      { role: 'user', content: 'now [[echo-history]]' },
    ]);
  });

  test('withSystemPrompts hands the trimming what the system prompts leave', async () => {
    const budgets: number[] = [];
    const out = await withSystemPrompts({ model: 'abc', chat: null }, 10, (chars) => {
      budgets.push(chars);
      return [{ role: 'user', content: 'q' }];
    });
    assert.deepEqual(budgets, [7]);
    assert.deepEqual(out, [
      { role: 'system', content: 'abc' },
      { role: 'user', content: 'q' },
    ]);
    assert.deepEqual(systemMessages({ model: null, chat: '' }), []);
  });
});
