import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeLlm, fakeAnswerChunks, startFakeLlm } from './fake-llm-server.ts';

let fake: FakeLlm;
before(async () => {
  fake = await startFakeLlm();
});
after(() => fake.close());

const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${fake.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** The `data:` payloads of an SSE body, in order. */
function dataLines(body: string): string[] {
  return body
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}

const user = (content: string) => [{ role: 'user', content }];

describe('fake OpenAI-compatible server over plain HTTP', () => {
  test('GET /v1/models lists the fake models in OpenAI shape', async () => {
    const res = await fetch(`${fake.baseUrl}/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { object: string; data: Array<{ id: string; object: string; owned_by: string }> };
    assert.equal(body.object, 'list');
    assert.deepEqual(
      body.data.map((m) => [m.id, m.object, m.owned_by]),
      [
        ['fake-echo', 'model', 'parley'],
        ['fake-large', 'model', 'parley'],
      ],
    );
  });

  test('a streamed answer is OpenAI SSE: chunks, a stop chunk, a usage chunk, then [DONE]', async () => {
    const before = fake.requests;
    const body = { model: 'fake-echo', messages: user('Hello there'), stream: true, stream_options: { include_usage: true } };
    const res = await post(body);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const lines = dataLines(await res.text());
    assert.equal(lines.at(-1), '[DONE]');
    const events = lines.slice(0, -1).map((l) => JSON.parse(l));
    for (const e of events) assert.equal(e.object, 'chat.completion.chunk');
    const usage = events.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.total_tokens, usage.usage.prompt_tokens + usage.usage.completion_tokens);
    assert.equal(events.at(-2).choices[0].finish_reason, 'stop');
    const text = events.map((e) => e.choices[0]?.delta?.content ?? '').join('');
    assert.match(text, /^You said: Hello there\n\n/);
    assert.match(text, /```ts\n[\s\S]+\n```\n$/);
    const pieces = events.filter((e) => e.choices[0]?.delta?.content).length;
    assert.ok(pieces >= 20 && pieces <= 40, `${pieces} chunks`);
    assert.equal(fake.requests, before + 1);
    assert.deepEqual(fake.lastRequest, body);
  });

  test('the same input always gives the same chunks', () => {
    assert.deepEqual(fakeAnswerChunks(user('same')), fakeAnswerChunks(user('same')));
    assert.notDeepEqual(fakeAnswerChunks(user('same')), fakeAnswerChunks(user('other')));
  });

  test('without include_usage there is no usage chunk', async () => {
    const lines = dataLines(await (await post({ model: 'fake-echo', messages: user('hi'), stream: true })).text());
    assert.ok(lines.slice(0, -1).every((l) => !('usage' in JSON.parse(l))));
  });

  test('a non-streamed request gets a chat.completion', async () => {
    const res = await post({ model: 'fake-echo', messages: user('plain') });
    const body = (await res.json()) as { object: string; choices: Array<{ message: { content: string }; finish_reason: string }> };
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.choices[0]?.message.content, fakeAnswerChunks(user('plain')).join(''));
    assert.equal(body.choices[0]?.finish_reason, 'stop');
  });

  test('[[fail]] and [[status:N]] answer with an OpenAI-shaped error before streaming', async () => {
    const failed = await post({ model: 'fake-echo', messages: user('[[fail]]'), stream: true });
    assert.equal(failed.status, 500);
    assert.equal(((await failed.json()) as { error: { message: string } }).error.message, 'The fake model failed on purpose.');
    assert.equal((await post({ model: 'fake-echo', messages: user('[[status:429]]'), stream: true })).status, 429);
  });

  test('[[malformed]] sends two good chunks, then a line that is not JSON', async () => {
    const lines = dataLines(await (await post({ model: 'fake-echo', messages: user('[[malformed]]'), stream: true })).text());
    assert.equal(lines.at(-1), '{not json');
    assert.equal(lines.length, 4); // role chunk, two content chunks, garbage
  });

  test('[[nul]] and [[surrogates]] put what byte-level tokens can produce into the streamed answer', async () => {
    const text = (lines: string[]) =>
      lines
        .slice(0, -1)
        .map((l) => JSON.parse(l).choices[0]?.delta?.content ?? '')
        .join('');
    const nul = text(dataLines(await (await post({ model: 'fake-echo', messages: user('[[nul]]'), stream: true })).text()));
    assert.ok(nul.includes('a NUL \u0000 here'));
    const pieces = dataLines(await (await post({ model: 'fake-echo', messages: user('[[surrogates]]'), stream: true })).text())
      .slice(0, -1)
      .map((l) => JSON.parse(l).choices[0]?.delta?.content ?? '');
    assert.ok(pieces.includes('lone high \ud800 ') && pieces.includes('lone low \udc00 '));
    const split = pieces.indexOf('split \ud83d');
    assert.equal(pieces[split + 1], '\ude00 pair ', 'the pair is split across two chunks');
  });

  test('maxContextChars: a request with more characters than the context window gets 400 context_length_exceeded', async () => {
    const small = await startFakeLlm({ maxContextChars: 20 });
    try {
      const ok = await fetch(`${small.baseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'fake-echo', messages: user('short') }) });
      assert.equal(ok.status, 200);
      const tooMuch = [
        { role: 'user', content: 'twelve chars' },
        { role: 'user', content: 'twelve chars' },
      ];
      const refused = await fetch(`${small.baseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'fake-echo', messages: tooMuch }) });
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'context_length_exceeded');
    } finally {
      await small.close();
    }
  });

  test('abandonedStreams counts streams the client left before their end, not finished ones', async () => {
    const before = fake.abandonedStreams;
    await (await post({ model: 'fake-echo', messages: user('to the end'), stream: true })).text();
    const res = await post({ model: 'fake-echo', messages: user('[[slow:20]] [[long:50]]'), stream: true });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    const deadline = Date.now() + 5_000;
    while (fake.abandonedStreams === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fake.abandonedStreams, before + 1);
  });

  test('[[drop]] destroys the connection without [DONE]', async () => {
    const res = await post({ model: 'fake-echo', messages: user('[[drop]]'), stream: true });
    await assert.rejects(res.text());
  });

  test('[[long:N]] sends N chunks; [[echo-history]] lists every message received', async () => {
    assert.equal(fakeAnswerChunks(user('[[long:500]]')).length, 500);
    const history = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'answer one' },
      { role: 'user', content: '[[echo-history]] second' },
    ];
    assert.equal(
      fakeAnswerChunks(history).join(''),
      'History (4 messages):\n1. system: Be brief.\n2. user: first\n3. assistant: answer one\n4. user: [[echo-history]] second',
    );
  });

  test('[[stall]] keeps the stream open after two chunks until the client goes away', async () => {
    const res = await post({ model: 'fake-echo', messages: user('[[stall]]'), stream: true });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let received = '';
    while ((received.match(/"content":"[^"]/g) ?? []).length < 2) received += new TextDecoder().decode((await reader.read()).value);
    const next = reader.read();
    const timeout = new Promise((resolve) => setTimeout(() => resolve('still open'), 200));
    assert.equal(await Promise.race([next, timeout]), 'still open');
    await reader.cancel();
  });

  test('unknown paths get a 404 JSON error', async () => {
    assert.equal((await fetch(`${fake.baseUrl}/nothing`)).status, 404);
  });
});

describe('fake server driven by the openai SDK', () => {
  test('streams through the SDK', async () => {
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'via sdk' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, fakeAnswerChunks(user('via sdk')).join(''));
  });

  test('lists models through the SDK', async () => {
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['fake-echo', 'fake-large']);
  });

  test('with an API key, requests without the right bearer token get 401', async () => {
    const locked = await startFakeLlm({ apiKey: 'sk-right' });
    try {
      const wrong = new OpenAI({ baseURL: locked.baseUrl, apiKey: 'sk-wrong', maxRetries: 0 });
      await assert.rejects(wrong.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError && err.status === 401);
      assert.equal((await fetch(`${locked.baseUrl}/models`)).status, 401);
      const right = new OpenAI({ baseURL: locked.baseUrl, apiKey: 'sk-right', maxRetries: 0 });
      const done = await right.chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'ok' }] });
      assert.equal(done.choices[0]?.finish_reason, 'stop');
    } finally {
      await locked.close();
    }
  });
});
