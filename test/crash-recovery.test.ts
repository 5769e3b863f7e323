import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLUSH_INTERVAL_MS } from '../src/chat/generation.ts';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { startTestApp } from './app.ts';
import { waitFor } from './chat-fixtures.ts';
import { askOver, placeForServer, spawnServer } from './server-process.ts';

// A server process killed mid-answer (kill -9: no shutdown code runs) leaves its answer `streaming`. The next
// process to start on the database must see at once that its owner is gone — not 30 s later when the heartbeat
// goes stale. On PostgreSQL the dead process's instance lock vanished with its connection; on PGlite only one
// process ever runs, so every answer still active at start is dead.
//
// And the text it keeps is the answer as streamed up to one flush tick before the kill: the model first sends
// ~9,000 characters at once, then a word every 40 ms, so a rule that saved a long answer only after it had grown
// by a fraction (the old one: a quarter) would have lost every slow word.

/** Slack over one tick: the save begun at the last tick may still be on its way when the kill comes. */
const SAVE_IN_FLIGHT_MS = 500;
const BURST_WORDS = 1500;
const SLOW_WORDS_BEFORE_KILL = 60;

test('an answer of a killed server is interrupted, with its text up to a second before the kill, as soon as another process starts', async () => {
  const llm = await startFakeLlm();
  const place = await placeForServer();
  try {
    const server = await spawnServer({ ...place.env, OPENAI_BASE_URL: llm.baseUrl, OPENAI_MODELS: 'fake-echo' });
    const { chatId, res } = await askOver(server.baseUrl, `a long one [[long:3000]] [[burst:${BURST_WORDS}]] [[slow:40]]`);
    // What the browser had received, and when: the cumulative length after each token event.
    const received: Array<{ at: number; length: number }> = [];
    let text = '';
    let words = 0;
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    for (let buffer = ''; words < BURST_WORDS + SLOW_WORDS_BEFORE_KILL; ) {
      const chunk = await reader?.read();
      assert.ok(chunk && !chunk.done, 'the stream ended before the kill');
      buffer += decoder.decode(chunk.value, { stream: true });
      for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!block.startsWith('event: token')) continue;
        const piece = (JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') as { text: string }).text;
        text += piece;
        words += piece.match(/\s+/g)?.length ?? 0;
        received.push({ at: Date.now(), length: text.length });
      }
    }
    const killedAt = Date.now();
    server.child.kill('SIGKILL');
    await server.exited;

    const database = await place.open();
    const next = await startTestApp({}, database); // the next process on this database
    // The contract: interrupted as soon as the app is ready again. Measured from ready, not from the kill: opening the
    // database and building the app take what the machine's load makes them take, which is not this test's subject.
    const readyAt = Date.now();
    try {
      const row = await waitFor(async () => {
        const r = await database.db
          .selectFrom('chatbot_schema.response')
          .select(['txstatus', 'txmarkdown', 'txerror'])
          .where('idchat', '=', chatId)
          .executeTakeFirstOrThrow();
        return r.txstatus === 'interrupted' ? r : undefined;
      }, 20_000);
      const tookMs = Date.now() - readyAt;
      assert.ok(tookMs < 8_000, `interrupted ${tookMs} ms after the next process was ready (${Date.now() - killedAt} ms after the kill)`);
      assert.match(row.txerror ?? '', /restarted/);

      const stored = row.txmarkdown ?? '';
      // The server may have saved text the browser had not read yet: both are beginnings of one answer.
      const shorter = Math.min(stored.length, text.length);
      assert.equal(stored.slice(0, shorter), text.slice(0, shorter), 'the stored text is the streamed one');
      const firstUnsaved = received.find((r) => r.length > stored.length);
      const lostMs = firstUnsaved ? killedAt - firstUnsaved.at : 0;
      assert.ok(
        lostMs <= FLUSH_INTERVAL_MS + SAVE_IN_FLIGHT_MS,
        `the stored text (${stored.length} of ${text.length} characters received) lacks what arrived in the last ${lostMs} ms before the kill`,
      );
    } finally {
      await next.close();
      await database.close();
    }
  } finally {
    await place.cleanUp();
    await llm.close();
  }
});
