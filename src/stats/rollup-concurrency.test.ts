import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase, testDbKind } from '../../test/database.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import { beginAnswer } from '../chat/chat-queries.ts';
import { finalizeResponse, markOrphanedResponsesInterrupted, markStreaming } from '../chat/response-store.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { backfillUsageStep, rebuildUsageRollups, restartUsageBackfill, usageBackfillPercent } from '../db/migrations/011-usage-rollups.ts';

/**
 * Many prompts and answers at once, through the app's own writes, on a pool of connections (on PostgreSQL; PGlite
 * has one connection and serializes everything, so there it proves little): the rollups the triggers kept must be
 * exactly what a recount from the rows gives, histograms included, and no write may deadlock.
 */
let database: OpenedDatabase;

const snapshot = () => rollupsByKey(database.db);

before(async () => {
  database = await openTestDatabase();
  await sql`
    INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('m1', 'http://127.0.0.1:9/v1', 'a'), ('m2', 'http://127.0.0.1:9/v1', 'b');
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('u1', 'u1@example.com', ''), ('u2', 'u2@example.com', '');
  `.execute(database.db);
  await sql`
    INSERT INTO chatbot_schema.chat (idappuser, idllm)
    SELECT u.idappuser, l.idllm FROM chatbot_schema.app_user u CROSS JOIN chatbot_schema.llm l CROSS JOIN generate_series(1, 6)`.execute(database.db);
});
after(() => database.close());

test(`concurrent prompts, answers and sweeps keep the rollups equal to a recount (bites only on PostgreSQL; running on ${testDbKind})`, async () => {
  const db = database.db;
  const chats = (await sql<{ idchat: number; idappuser: number }>`SELECT idchat, idappuser FROM chatbot_schema.chat ORDER BY idchat`.execute(db)).rows;
  const statuses = ['complete', 'error', 'stopped', 'complete'] as const;
  // Every chat answers several prompts in turn (one answer per chat at a time), all chats at once.
  await Promise.all(
    chats.map(async (chat, ci) => {
      for (let turn = 0; turn < 6; turn++) {
        const r = await beginAnswer(db, { userId: chat.idappuser, chatId: chat.idchat, prompt: `p${turn}`, maxActive: 1000 });
        assert.equal(r.outcome, 'ok');
        if (r.outcome !== 'ok') return;
        await markStreaming(db, r.responseId);
        if (turn === 5 && ci % 3 === 0) continue; // the last answer left active: the sweep below interrupts it
        await finalizeResponse(db, r.responseId, {
          status: statuses[(ci + turn) % statuses.length] ?? 'complete',
          markdown: 'x',
          html: '<p>x</p>',
          error: null,
          promptTokens: turn + 1,
          completionTokens: 10 * (turn + 1),
        });
      }
    }),
  );
  // The sweep finds the unfinished ones ownerless and silent: every one becomes interrupted.
  await sql`UPDATE chatbot_schema.response SET dtheartbeat = now() - interval '1 hour' WHERE txstatus IN ('pending', 'streaming')`.execute(db);
  assert.ok((await markOrphanedResponsesInterrupted(db)) > 0);

  const kept = await snapshot();
  const prompts = kept.total.reduce((a, r) => a + Number((r as { nprompts: number }).nprompts), 0);
  assert.equal(prompts, chats.length * 6);
  await rebuildUsageRollups(db, 'UTC');
  assert.deepEqual(kept, await snapshot());
});

test(`the backfill in batches, with prompts and answers arriving meanwhile, counts every row once (bites only on PostgreSQL; running on ${testDbKind})`, async () => {
  const db = database.db;
  await restartUsageBackfill(db, 'UTC');
  assert.equal(await usageBackfillPercent(db), 0);
  const chats = (await sql<{ idchat: number; idappuser: number }>`SELECT idchat, idappuser FROM chatbot_schema.chat ORDER BY idchat`.execute(db)).rows;
  const newChat = await sql<{ idchat: number }>`
    INSERT INTO chatbot_schema.chat (idappuser, idllm) SELECT idappuser, idllm FROM chatbot_schema.chat ORDER BY idchat LIMIT 1 RETURNING idchat`.execute(db);
  const all = [...chats, { idchat: newChat.rows[0]?.idchat ?? 0, idappuser: chats[0]?.idappuser ?? 0 }];
  let writing = true;
  // Writers on every chat (counted, not yet counted, and newer than the backfill) while the batches run.
  const writers = Promise.all(
    all.map(async (chat, i) => {
      for (let turn = 0; writing || turn < 2; turn++) {
        const r = await beginAnswer(db, { userId: chat.idappuser, chatId: chat.idchat, prompt: `b${turn}`, maxActive: 1000 });
        if (r.outcome !== 'ok') throw new Error(r.outcome);
        await finalizeResponse(db, r.responseId, {
          status: i % 2 ? 'complete' : 'error',
          markdown: 'y',
          html: '<p>y</p>',
          error: null,
          promptTokens: 1,
          completionTokens: 2,
        });
        if (turn > 20) break;
      }
    }),
  );
  let steps = 0;
  while (await backfillUsageStep(db, 2)) steps++;
  writing = false;
  await writers;
  assert.ok(steps >= 5, `${steps} batches`);
  assert.equal(await usageBackfillPercent(db), null);
  const kept = await snapshot();
  await rebuildUsageRollups(db, 'UTC');
  assert.deepEqual(kept, await snapshot());
});
