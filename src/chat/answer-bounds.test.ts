import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, tokensText, waitFor } from '../../test/chat-fixtures.ts';
import { countFlushes } from '../../test/flush-counter.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import type { ModelConnection } from '../llm/model-client.ts';
import { type GenerationDeps, GenerationRegistry } from './generation.ts';
import { appendPartial, flushPartial } from './response-store.ts';

// Small bounds, so each one is reached in a test that takes a second or two.
const MAX_ANSWER_CHARS = 2000;
const MAX_HISTORY_CHARS = 1000;

let w: ChatWorld;
let smallContext: FakeLlm;
let smallContextModel: number;
before(async () => {
  w = await startChatWorld({ MAX_ANSWER_CHARS: String(MAX_ANSWER_CHARS), LLM_MAX_ANSWER_S: '2', MAX_HISTORY_CHARS: String(MAX_HISTORY_CHARS) });
  smallContext = await startFakeLlm({ maxContextChars: 1500 });
  smallContextModel = await addModel(w.t.database, smallContext.baseUrl, 'Small context');
});
after(async () => {
  await w.close();
  await smallContext.close();
});

const responseRow = (id: number) => w.t.database.db.selectFrom('chatbot_schema.response').selectAll().where('idresponse', '=', id).executeTakeFirstOrThrow();

async function ask(chatId: number, content: string) {
  const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content });
  assert.equal(res.statusCode, 200, res.body);
  const events = parseSse(res.body);
  const last = events.at(-1);
  const idresponse = Number(events[0]?.data.idresponse);
  return { events, last, text: tokensText(events), row: await responseRow(idresponse) };
}

describe('an answer is bounded', () => {
  test('beyond MAX_ANSWER_CHARS the model is stopped, the text kept up to the bound, and the answer is an error with a reason', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const abandonedBefore = w.llm.abandonedStreams;
    const { last, text, row } = await ask(chatId, '[[long:400]]'); // about 2,600 characters, well within the time limit
    assert.equal(last?.event, 'error');
    assert.match(String(last?.data.message), /2,000 characters/);
    assert.equal(text.length, MAX_ANSWER_CHARS);
    assert.equal(row.txstatus, 'error');
    assert.equal(row.txmarkdown, text);
    assert.match(row.txerror ?? '', /length limit of 2,000 characters/);
    assert.ok((row.txcontent ?? '').startsWith('<p>lorem ipsum'), 'the text kept is rendered');
    await waitFor(async () => (w.llm.abandonedStreams > abandonedBefore ? true : undefined)); // the model was stopped
  });

  test('an answer still streaming after LLM_MAX_ANSWER_S ends as an error with a reason, its text kept', { timeout: 10_000 }, async () => {
    const chatId = await newChat(w.user, w.modelId);
    const started = Date.now();
    const { last, text, row } = await ask(chatId, '[[slow:50]] [[long:200]]'); // would take 10 s
    assert.ok(Date.now() - started < 6_000);
    assert.equal(last?.event, 'error');
    assert.match(String(last?.data.message), /time limit of 2 s/);
    assert.equal(row.txstatus, 'error');
    assert.ok(text.length > 0);
    assert.equal(row.txmarkdown, text);
  });

  test('the time limit also ends a model that goes quiet before the idle timeout (LLM_TIMEOUT_S) would', { timeout: 10_000 }, async () => {
    const chatId = await newChat(w.user, w.modelId);
    const { last, text, row } = await ask(chatId, '[[stall]]'); // two chunks, then silence; the idle timeout is 120 s
    assert.equal(last?.event, 'error');
    assert.equal(row.txstatus, 'error');
    assert.match(row.txerror ?? '', /time limit/);
    assert.ok(text.length > 0);
    assert.equal(row.txmarkdown, text);
  });

  test('a long chat keeps working: the model gets the newest whole turns that fit MAX_HISTORY_CHARS, and always the prompt', async () => {
    const chatId = await newChat(w.user, smallContextModel); // a model refusing more than 1,500 characters with HTTP 400
    const turns: Array<{ prompt: string; answer: string }> = [];
    for (let i = 1; i <= 8; i++) {
      const prompt = `turn ${i} [[long:40]]`;
      const { last, text } = await ask(chatId, prompt);
      assert.equal(last?.event, 'done', `turn ${i}: ${JSON.stringify(last?.data)}`);
      turns.push({ prompt, answer: text });
    }
    const { last } = await ask(chatId, '[[echo-history]] last');
    assert.equal(last?.event, 'done');
    const sent = (smallContext.lastRequest as { messages: Array<{ role: string; content: string }> }).messages;
    assert.deepEqual(sent.at(-1), { role: 'user', content: '[[echo-history]] last' });
    const kept = (sent.length - 1) / 2;
    assert.ok(Number.isInteger(kept) && kept >= 1 && kept < turns.length, `${kept} turns kept`);
    const newest = turns.slice(-kept).flatMap((t) => [
      { role: 'user', content: t.prompt },
      { role: 'assistant', content: t.answer },
    ]);
    assert.deepEqual(sent.slice(0, -1), newest);
    const chars = (messages: Array<{ content: string }>) => messages.reduce((n, m) => n + m.content.length, 0);
    assert.ok(chars(sent) <= MAX_HISTORY_CHARS);
    const next = turns.at(-kept - 1);
    assert.ok(next && chars(sent) + next.prompt.length + next.answer.length > MAX_HISTORY_CHARS, 'the next older turn would not have fitted');
  });

  test('a prompt longer than the history budget is still sent, alone', async () => {
    const chatId = await newChat(w.user, w.modelId);
    await ask(chatId, 'an earlier question');
    const prompt = `${'x'.repeat(MAX_HISTORY_CHARS + 10)} [[echo-history]]`;
    await ask(chatId, prompt);
    assert.deepEqual((w.llm.lastRequest as { messages: unknown[] }).messages, [{ role: 'user', content: prompt }]);
  });
});

describe('model output is stored whatever bytes it holds', () => {
  test('a NUL in the model output is stripped: the answer completes and is stored', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const { last, text, row } = await ask(chatId, 'zero [[nul]]');
    assert.equal(last?.event, 'done');
    assert.ok(!text.includes('\u0000'));
    assert.ok(text.includes('a NUL  here'));
    assert.equal(row.txstatus, 'complete');
    assert.equal(row.txmarkdown, text);
  });

  test('lone surrogates become U+FFFD, a pair split across chunks stays whole: what was streamed is what is stored', async () => {
    const chatId = await newChat(w.user, w.modelId);
    const { last, text, row } = await ask(chatId, 'odd [[surrogates]]');
    assert.equal(last?.event, 'done');
    assert.equal(row.txstatus, 'complete');
    assert.ok(text.isWellFormed());
    assert.ok(text.includes('split 😀 pair'));
    assert.equal(text.match(/\uFFFD/g)?.length, 2);
    assert.equal(row.txmarkdown, text);
  });
});

describe('the generation itself', () => {
  const logged: Array<{ msg: string }> = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) }) as unknown as FastifyBaseLogger;
  const connection = (): ModelConnection => ({ id: w.modelId, name: 'Fake echo', baseUrl: w.llm.baseUrl, apiKey: null, model: 'fake-echo' });
  const deps = (over: Partial<GenerationDeps> = {}): GenerationDeps => ({
    db: w.t.database.db,
    log,
    idleTimeoutMs: 5_000,
    maxAnswerChars: 1_000_000,
    maxAnswerMs: 60_000,
    ...over,
  });

  async function pendingResponse(): Promise<number> {
    const chatId = await newChat(w.user, w.modelId);
    const db = w.t.database.db;
    const { idmessage } = await db
      .insertInto('chatbot_schema.message')
      .values({ idchat: chatId, txmessage: 'q' })
      .returning('idmessage')
      .executeTakeFirstOrThrow();
    const { idresponse } = await db
      .insertInto('chatbot_schema.response')
      .values({
        idchat: chatId,
        idmessage,
        idllm: w.modelId,
        txmarkdown: '',
        txcontent: '',
        txstatus: 'pending',
        tinf_start: sql`now()`,
        dtheartbeat: sql`now()`,
      })
      .returning('idresponse')
      .executeTakeFirstOrThrow();
    return idresponse;
  }

  test('an error after the model finished (a listener throwing at the end) is logged; the process survives and the entry is removed', async () => {
    const registry = new GenerationRegistry(deps());
    const id = await pendingResponse();
    const generation = registry.start(id, connection(), [{ role: 'user', content: 'hello' }]);
    generation.subscribe((e) => {
      if (e.type === 'done') throw new Error('listener broke');
    });
    await generation.finished; // an unhandled rejection here would fail this test file
    assert.equal(registry.get(id), undefined);
    assert.equal((await responseRow(id)).txstatus, 'complete');
    assert.ok(logged.some((l) => /listener/.test(l.msg)));
  });

  test('a renderer that throws: the answer is still stored and streamed to its end, shown as plain text', async () => {
    const registry = new GenerationRegistry(
      deps({
        renderMarkdown: () => {
          throw new Error('renderer broke');
        },
      }),
    );
    const id = await pendingResponse();
    const generation = registry.start(id, connection(), [{ role: 'user', content: '<b>bold</b>' }]);
    const seen: string[] = [];
    generation.subscribe((e) => seen.push(e.type));
    await generation.finished;
    assert.equal(seen.at(-1), 'done');
    const row = await responseRow(id);
    assert.equal(row.txstatus, 'complete');
    assert.ok(row.txcontent?.startsWith('<pre>You said: &lt;b&gt;bold&lt;/b&gt;'), row.txcontent ?? '');
    assert.ok(logged.some((l) => /render/.test(l.msg)));
    assert.equal(registry.get(id), undefined);
  });

  test('a listener that throws on a token does not break the answer for the others', async () => {
    const registry = new GenerationRegistry(deps());
    const id = await pendingResponse();
    const generation = registry.start(id, connection(), [{ role: 'user', content: 'hello' }]);
    generation.subscribe(() => {
      throw new Error('listener broke');
    });
    const seen: string[] = [];
    generation.subscribe((e) => seen.push(e.type));
    await generation.finished;
    assert.equal(seen.at(-1), 'done');
    const row = await responseRow(id);
    assert.equal(row.txstatus, 'complete');
    assert.equal(row.txmarkdown, generation.text);
  });

  test('saving a long answer every tick sends its text once: each save appends what arrived since the last', async () => {
    const counter = countFlushes();
    const registry = new GenerationRegistry(deps({ db: w.t.database.db.withPlugin(counter.plugin), flushIntervalMs: 5 }));
    const id = await pendingResponse();
    const generation = registry.start(id, connection(), [{ role: 'user', content: '[[long:1500]]' }]); // ~9,000 characters over ~1.5 s
    await generation.finished;
    const n = Buffer.byteLength(generation.text);
    assert.equal((await responseRow(id)).txmarkdown, generation.text);
    assert.ok(counter.flushes >= 5, `${counter.flushes} flushes: the answer must span many flush ticks to prove anything`);
    assert.equal(counter.appends, counter.flushes - 1, 'only the first save (over the placeholder) writes the whole text');
    assert.ok(counter.bytes <= n, `${counter.bytes} bytes flushed for a ${n}-byte answer`);
  });

  test('a save appends only onto the text it expects: otherwise nothing is written and the caller saves the whole text', async () => {
    const id = await pendingResponse();
    assert.equal(await flushPartial(w.t.database.db, id, 'héllo'), false);
    assert.equal(await appendPartial(w.t.database.db, id, ' wörld', Buffer.byteLength('héllo')), false);
    assert.equal((await responseRow(id)).txmarkdown, 'héllo wörld');
    assert.equal(await appendPartial(w.t.database.db, id, ' again', Buffer.byteLength('héllo')), null, 'a stale length appends nothing');
    assert.equal((await responseRow(id)).txmarkdown, 'héllo wörld');
  });
});
