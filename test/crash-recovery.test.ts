import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { startTestApp } from './app.ts';
import { waitFor } from './chat-fixtures.ts';
import { askOver, placeForServer, spawnServer } from './server-process.ts';

// A server process killed mid-answer (kill -9: no shutdown code runs) leaves its answer `streaming`. The next
// process to start on the database must see at once that its owner is gone — not 30 s later when the heartbeat
// goes stale. On PostgreSQL the dead process's instance lock vanished with its connection; on PGlite only one
// process ever runs, so every answer still active at start is dead.

test('an answer of a killed server is interrupted, with its text, as soon as another process starts', async () => {
  const llm = await startFakeLlm();
  const place = await placeForServer();
  try {
    const server = await spawnServer({ ...place.env, OPENAI_BASE_URL: llm.baseUrl, OPENAI_MODELS: 'fake-echo' });
    const { chatId, res } = await askOver(server.baseUrl, 'a long one [[slow:50]] [[long:400]]');
    const reader = res.body?.getReader();
    for (let got = ''; !got.includes('event: token'); ) got += new TextDecoder().decode((await reader?.read())?.value);
    await new Promise((r) => setTimeout(r, 1_500)); // at least one flush of the partial text
    server.child.kill('SIGKILL');
    await server.exited;
    const killedAt = Date.now();

    const database = await place.open();
    const next = await startTestApp({}, database); // the next process on this database
    try {
      const row = await waitFor(async () => {
        const r = await database.db
          .selectFrom('chatbot_schema.response')
          .select(['txstatus', 'txmarkdown', 'txerror'])
          .where('idchat', '=', chatId)
          .executeTakeFirstOrThrow();
        return r.txstatus === 'interrupted' ? r : undefined;
      }, 20_000);
      const tookMs = Date.now() - killedAt;
      assert.ok(tookMs < 8_000, `interrupted ${tookMs} ms after the kill`);
      assert.match(row.txmarkdown ?? '', /lorem/, 'the partial text is kept');
      assert.match(row.txerror ?? '', /restarted/);
    } finally {
      await next.close();
      await database.close();
    }
  } finally {
    await place.cleanUp();
    await llm.close();
  }
});
