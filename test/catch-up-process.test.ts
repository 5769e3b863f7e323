import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { fillAdoptedWorld } from '../bench/adopted-world.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { placeForServer, type ServerProcess, spawnServer } from './server-process.ts';

// The real process on a database the Flask prototype left (bench/adopted-world.ts, small): the server is ready while
// the adopted answers still wait, SIGTERM stops their re-rendering between batches (exit 0), and the next start
// resumes where it stopped, so every answer is rendered exactly once over both runs.

const PROGRESS = /catching up: re-rendering adopted answers, \d+ % done/;
const STOPPED = 'catching up: re-rendering adopted answers stopped; it resumes at the next start';
const FINISHED = /catching up: re-rendering adopted answers finished in \d+ s/;

async function waitForOutput(server: ServerProcess, wanted: RegExp): Promise<void> {
  for (const deadline = Date.now() + 60_000; !wanted.test(server.output()); await sleep(20)) {
    assert.ok(Date.now() < deadline && server.child.exitCode === null, `never logged ${wanted}:\n${server.output()}`);
  }
}

async function counts(database: OpenedDatabase) {
  const r = await sql<{ left: number; ntotal: number | null; ndone: number }>`
    SELECT (SELECT count(*)::int FROM chatbot_schema.response WHERE NOT is_html_ours) AS left, ntotal::int, ndone::int
    FROM chatbot_schema.catch_up WHERE txjob = 'adopted-answers'`.execute(database.db);
  return r.rows[0];
}

test('ready before the adopted answers are re-rendered; SIGTERM stops between batches; a restart resumes and renders each once', async () => {
  const place = await placeForServer({ prefix: 'parley_catch_up', migrate: false });
  try {
    const seed = await place.open();
    await fillAdoptedWorld(seed.db, { users: 5, chatsPerUser: 10, messagesPerChat: 30 });
    await seed.close();
    const total = 1500 + 6; // and the fixture's own answers

    const first = await spawnServer(place.env);
    await waitForOutput(first, PROGRESS);
    first.child.kill('SIGTERM');
    const signalled = Date.now();
    assert.equal(await first.exited, 0, first.output());
    assert.ok(Date.now() - signalled < 5_000, `exited ${Date.now() - signalled} ms after SIGTERM`);
    const out = first.output();
    assert.ok(out.indexOf('is ready') >= 0 && out.indexOf('is ready') < out.search(PROGRESS), `ready before catching up:\n${out}`);
    assert.ok(out.includes(STOPPED), out);

    let database = await place.open();
    const stopped = await counts(database);
    await database.close();
    assert.equal(stopped?.ntotal, total);
    assert.ok(stopped && stopped.ndone > 0 && stopped.ndone < total, `stopped part way: ${JSON.stringify(stopped)}`);
    assert.equal(stopped?.left, total - (stopped?.ndone ?? 0));

    const second = await spawnServer(place.env);
    await waitForOutput(second, FINISHED);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.output());
    database = await place.open();
    const done = await counts(database);
    await database.close();
    // ndone counts every row rendered, over both runs: exactly the total, so none was rendered twice.
    assert.deepEqual(done, { left: 0, ntotal: total, ndone: total });
  } finally {
    await place.cleanUp();
  }
});
