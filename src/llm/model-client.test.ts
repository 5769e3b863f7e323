import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type FakeLlm, fakeAnswerChunks, startFakeLlm } from './fake-llm-server.ts';
import { type ChatTurn, listModels, type ModelConnection, ModelError, type ModelErrorKind, type StreamEvent, streamCompletion } from './model-client.ts';

// Long enough that a loaded CI machine does not time out a healthy stream (0.3 s did, with other jobs on both cores).
const IDLE_TIMEOUT_MS = 1_000;
const SECRET_KEY = 'sk-very-secret-key-123';

let fake: FakeLlm;
let locked: FakeLlm;
let closedPortUrl: string;
/** Accepts connections and never answers, not even with headers. */
const silent = createServer(() => undefined);
let silentUrl: string;
before(async () => {
  fake = await startFakeLlm();
  locked = await startFakeLlm({ apiKey: SECRET_KEY });
  // A port that was just free: nothing listens there, so connecting is refused.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPortUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/v1`;
  await new Promise((resolve) => probe.close(resolve));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`;
});
after(async () => {
  await fake.close();
  await locked.close();
  silent.closeAllConnections();
  await new Promise((resolve) => silent.close(resolve));
});

const connection = (over: Partial<ModelConnection> = {}): ModelConnection => ({
  id: 1,
  name: 'Fake',
  baseUrl: fake.baseUrl,
  apiKey: null,
  model: 'fake-echo',
  ...over,
});
const ask = (content: string): ChatTurn[] => [{ role: 'user', content }];

/** Runs a stream to its end; returns what arrived and the error that ended it, if any. */
async function collect(
  conn: ModelConnection,
  messages: ChatTurn[],
  signal?: AbortSignal,
): Promise<{ events: StreamEvent[]; text: string; error?: ModelError }> {
  const events: StreamEvent[] = [];
  try {
    for await (const e of streamCompletion(conn, messages, { idleTimeoutMs: IDLE_TIMEOUT_MS, signal })) events.push(e);
  } catch (err) {
    assert.ok(err instanceof ModelError, `not a ModelError: ${String(err)}`);
    return { events, text: deltas(events), error: err };
  }
  return { events, text: deltas(events) };
}

const deltas = (events: StreamEvent[]) => events.map((e) => (e.type === 'delta' ? e.text : '')).join('');

function assertKind(error: ModelError | undefined, kind: ModelErrorKind): ModelError {
  assert.ok(error, `expected a ${kind} error, the stream ended normally`);
  assert.equal(error.kind, kind, error.message);
  assert.doesNotMatch(error.message, /sk-|127\.0\.0\.1/);
  return error;
}

describe('streamCompletion', () => {
  test('streams the answer as deltas, then one usage event', async () => {
    const { events, text, error } = await collect(connection(), ask('Hello model'));
    assert.equal(error, undefined);
    assert.equal(text, fakeAnswerChunks(ask('Hello model')).join(''));
    const usage = events.filter((e) => e.type === 'usage');
    assert.equal(usage.length, 1);
    assert.deepEqual(events.at(-1), { type: 'usage', promptTokens: 2, completionTokens: fakeAnswerChunks(ask('Hello model')).length });
    const body = fake.lastRequest as { model: string; stream: boolean; stream_options: unknown };
    assert.equal(body.model, 'fake-echo');
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
  });

  test('passes the whole history, in order', async () => {
    const history: ChatTurn[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: '[[echo-history]]' },
    ];
    const { text } = await collect(connection(), history);
    assert.equal(text, 'History (4 messages):\n1. system: Be brief.\n2. user: first\n3. assistant: one\n4. user: [[echo-history]]');
  });

  test('sends the API key as a bearer token', async () => {
    const { error } = await collect(connection({ baseUrl: locked.baseUrl, apiKey: SECRET_KEY }), ask('hi'));
    assert.equal(error, undefined);
  });

  test('a wrong key is an http error with its status, and the key is not in the message', async () => {
    const { error } = await collect(connection({ baseUrl: locked.baseUrl, apiKey: 'sk-wrong-key' }), ask('hi'));
    assert.equal(assertKind(error, 'http').status, 401);
  });

  test('HTTP 500 and 429 before streaming are http errors with their status', async () => {
    const failed = assertKind((await collect(connection(), ask('[[fail]]'))).error, 'http');
    assert.equal(failed.status, 500);
    assert.equal(failed.message, 'The model server had a problem (HTTP 500). Try again in a moment.');
    assert.equal(assertKind((await collect(connection(), ask('[[status:429]]'))).error, 'http').status, 429);
  });

  test('a closed port is unreachable', async () => {
    const error = assertKind((await collect(connection({ baseUrl: closedPortUrl }), ask('hi'))).error, 'unreachable');
    assert.equal(error.message, 'Could not reach the model server');
  });

  test('a server that goes quiet mid-answer times out, after the chunks it sent', async () => {
    const { events, error } = await collect(connection(), ask('[[stall]]'));
    assert.match(assertKind(error, 'timeout').message, /did not answer within 1 s/);
    assert.equal(events.length, 2);
  });

  test('the first chunk counts: no answer at all, or headers but no text, times out', async () => {
    assertKind((await collect(connection({ baseUrl: silentUrl }), ask('hi'))).error, 'timeout');
    const { events, error } = await collect(connection(), ask('[[slow:3000]]'));
    assertKind(error, 'timeout');
    assert.equal(events.length, 0);
  });

  test('the idle timer restarts at each chunk: a slow but steady server is not timed out', async () => {
    // 100 ms between chunks, over 25 chunks, is far beyond the timeout in total but never that long a silence.
    const { error, text } = await collect(connection(), ask('[[slow:100]] [[long:25]]'));
    assert.equal(error, undefined);
    assert.equal(text, fakeAnswerChunks(ask('[[long:25]]')).join(''));
  });

  test('time the caller spends on a chunk is not counted against the server', async () => {
    let paused = false;
    const events: StreamEvent[] = [];
    for await (const e of streamCompletion(connection(), ask('patient'), { idleTimeoutMs: IDLE_TIMEOUT_MS })) {
      events.push(e);
      if (!paused) {
        paused = true;
        await new Promise((resolve) => setTimeout(resolve, IDLE_TIMEOUT_MS + 200));
      }
    }
    assert.equal(deltas(events), fakeAnswerChunks(ask('patient')).join(''));
  });

  test('a data line that is not JSON is malformed', async () => {
    const { events, error } = await collect(connection(), ask('[[malformed]]'));
    assertKind(error, 'malformed');
    assert.equal(events.length, 2);
  });

  test('a connection dropped mid-answer is malformed', async () => {
    assertKind((await collect(connection(), ask('[[drop]]'))).error, 'malformed');
  });

  test('a stream that ends cleanly without finish_reason or [DONE] is malformed', async () => {
    const { events, error } = await collect(connection(), ask('[[cut]]'));
    assert.match(assertKind(error, 'malformed').message, /before it was complete/);
    assert.equal(events.length, 2);
  });

  test("the caller's signal aborting mid-stream is 'aborted', not a timeout or an error", async () => {
    const controller = new AbortController();
    const events: StreamEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of streamCompletion(connection(), ask('[[slow:20]] [[long:100]]'), { idleTimeoutMs: IDLE_TIMEOUT_MS, signal: controller.signal })) {
          events.push(e);
          if (events.length === 3) controller.abort();
        }
      })(),
      (err: unknown) => err instanceof ModelError && err.kind === 'aborted',
    );
    assert.equal(events.length, 3);
  });

  test('a signal already aborted, or aborted while waiting for headers, is aborted', async () => {
    assertKind((await collect(connection(), ask('hi'), AbortSignal.abort())).error, 'aborted');
    const controller = new AbortController();
    const pending = collect(connection({ baseUrl: silentUrl }), ask('hi'), controller.signal);
    setTimeout(() => controller.abort(), 20);
    assertKind((await pending).error, 'aborted');
  });

  test('the text yielded is storable: NUL dropped, lone surrogates as U+FFFD, a pair split across chunks yielded whole', async () => {
    const nul = await collect(connection(), [{ role: 'user', content: '[[nul]]' }]);
    assert.equal(nul.error, undefined);
    assert.ok(nul.text.includes('a NUL  here') && !nul.text.includes('\u0000'));
    const odd = await collect(connection(), [{ role: 'user', content: '[[surrogates]]' }]);
    const pieces = odd.events.flatMap((e) => (e.type === 'delta' ? [e.text] : []));
    assert.ok(pieces.every((p) => p.isWellFormed()));
    assert.ok(odd.text.includes('lone high \uFFFD lone low \uFFFD split 😀 pair'));
  });

  test('breaking out of the loop early ends the request without an error', async () => {
    let seen = 0;
    for await (const _ of streamCompletion(connection(), ask('[[long:50]]'), { idleTimeoutMs: IDLE_TIMEOUT_MS })) {
      if (++seen === 2) break;
    }
    assert.equal(seen, 2);
  });
});

describe('listModels', () => {
  test('lists the ids a server offers', async () => {
    assert.deepEqual(await listModels({ baseUrl: fake.baseUrl, apiKey: null }), ['fake-echo', 'fake-large']);
    assert.deepEqual(await listModels({ baseUrl: locked.baseUrl, apiKey: SECRET_KEY }), ['fake-echo', 'fake-large']);
  });

  test('maps failures: refused connection, wrong key, silent server', async () => {
    await assert.rejects(listModels({ baseUrl: closedPortUrl, apiKey: null }), (e: unknown) => e instanceof ModelError && e.kind === 'unreachable');
    await assert.rejects(
      listModels({ baseUrl: locked.baseUrl, apiKey: 'sk-wrong-key' }),
      (e: unknown) => e instanceof ModelError && e.kind === 'http' && e.status === 401 && !e.message.includes('sk-'),
    );
    await assert.rejects(listModels({ baseUrl: silentUrl, apiKey: null }, { timeoutMs: 200 }), (e: unknown) => e instanceof ModelError && e.kind === 'timeout');
  });
});
