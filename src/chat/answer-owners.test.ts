import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { addModel, newChat, parseSse, waitFor } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { openScratchPostgres, testDbKind } from '../../test/database.ts';
import { type OpenedDatabase, openDatabase } from '../db/database.ts';
import { holdInstanceLock, INSTANCE_LOCK_CLASS, type LockLog } from '../db/instance-lock.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import { SWEEP_INTERVAL_MS, SWEEP_SETTLE_MS, sweepOrphanedAnswers } from './chat-routes.ts';
import { markOrphanedResponsesInterrupted } from './response-store.ts';

// Several app processes on one PostgreSQL database: each holds an advisory lock on its instance id, its answers
// record that id, and an answer is swept as soon as its owner's lock is gone — never while the owner lives.
// PGlite has one connection and one process, so there is nothing to tell apart (every active answer at start is
// dead: generation-lifecycle.test.ts and test/crash-recovery.test.ts cover that).
const onlyPostgres = testDbKind !== 'postgres' && 'needs PostgreSQL: PGlite has one process, so no owners to tell apart';

describe('answer owners (bites only on PostgreSQL)', { skip: onlyPostgres }, () => {
  let llm: FakeLlm;
  let a: OpenedDatabase & { url: string };
  let b: OpenedDatabase;
  let appA: TestApp;
  let appB: TestApp;
  let user: TestClient;
  let modelId: number;

  before(async () => {
    llm = await startFakeLlm();
    a = await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', 'parley_owners');
    b = await openDatabase({ databaseUrl: a.url }); // a second process's pool on the same database
    appA = await startTestApp({}, a);
    appB = await startTestApp({}, b);
    modelId = await addModel(a, llm.baseUrl);
    user = new TestClient(appA.app);
    await user.register({ email: 'ada@example.com' });
    await user.get('/chat');
  });
  after(async () => {
    await appB.close();
    await appA.close();
    await b.close();
    await a.close();
    await llm.close();
  });

  const heldLocks = async () => {
    const { rows } = await sql<{ objid: number; pid: number }>`
      SELECT objid::integer AS objid, pid FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND classid = ${INSTANCE_LOCK_CLASS}::oid AND objsubid = 2`.execute(a.db);
    return rows;
  };
  const rowOf = (id: number) =>
    a.db.selectFrom('chatbot_schema.response').select(['txstatus', 'idowner', 'txmarkdown', 'txerror']).where('idresponse', '=', id).executeTakeFirstOrThrow();

  /** An answer in a new chat as a process `owner` would leave it while streaming (just beaten its heartbeat). */
  const streamingAnswerOf = async (owner: number | null, text: string) => {
    const chatId = await newChat(user, modelId);
    const { idmessage } = await a.db
      .insertInto('chatbot_schema.message')
      .values({ idchat: chatId, txmessage: 'q' })
      .returning('idmessage')
      .executeTakeFirstOrThrow();
    const row = await a.db
      .insertInto('chatbot_schema.response')
      .values({ idchat: chatId, idmessage, idllm: modelId, txmarkdown: text, txcontent: '', txstatus: 'streaming', dtheartbeat: sql`now()`, idowner: owner })
      .returning('idresponse')
      .executeTakeFirstOrThrow();
    return row.idresponse;
  };

  test('each app instance holds the lock on its own id; an answer records the id of the instance generating it', async () => {
    const held = await heldLocks();
    assert.equal(new Set(held.map((l) => l.objid)).size, 2, 'two instances, two ids');
    const chatId = await newChat(user, modelId);
    const done = parseSse((await user.postJson(`/api/chats/${chatId}/messages`, { content: 'hello' })).body).at(-1);
    const row = await rowOf(Number(done?.data.idresponse));
    assert.ok(row.idowner !== null && held.some((l) => l.objid === row.idowner));
  });

  test('an answer streaming on instance A is left alone by instance B, however often B sweeps', async () => {
    const chatId = await newChat(user, modelId);
    const answer = user.postJson(`/api/chats/${chatId}/messages`, { content: 'slowly [[slow:20]] [[long:60]]' });
    const id = await waitFor(async () => {
      const r = await a.db.selectFrom('chatbot_schema.response').select(['idresponse', 'txstatus']).where('idchat', '=', chatId).executeTakeFirst();
      return r?.txstatus === 'streaming' ? r.idresponse : undefined;
    });
    for (let i = 0; i < 5; i++) assert.equal(await markOrphanedResponsesInterrupted(b.db), 0);
    assert.equal((await rowOf(id)).txstatus, 'streaming');
    assert.equal(parseSse((await answer).body).at(-1)?.event, 'done');
    assert.equal((await rowOf(id)).txstatus, 'complete');
  });

  test('when an owner dies (its lock connection closes) its answer is interrupted at the next sweep, well under 30 s', async () => {
    const silent: LockLog = { info() {}, warn() {}, error() {} };
    const other = await holdInstanceLock(a.db, silent); // a third process
    const idresponse = await streamingAnswerOf(other.owner, 'half an ans');
    assert.equal(await markOrphanedResponsesInterrupted(b.db), 0, 'its owner lives: the answer is left alone');
    await other.close(); // what the process's end (or crash) does to its connection
    const diedAt = Date.now();
    // Nobody calls the sweep here: the instances' own periodic sweep finds it.
    const row = await waitFor(async () => {
      const r = await rowOf(idresponse);
      return r.txstatus === 'interrupted' ? r : undefined;
    }, SWEEP_INTERVAL_MS + 2_000);
    assert.ok(Date.now() - diedAt < SWEEP_INTERVAL_MS + 2_000);
    assert.equal(row.txmarkdown, 'half an ans');
    assert.match(row.txerror ?? '', /restarted/);
  });

  test('a lost lock connection (PostgreSQL restart, pg_terminate_backend) is reconnected and the same id locked again', async () => {
    const logged: string[] = [];
    const log: LockLog = { info: (_o, m) => logged.push(m), warn: (_o, m) => logged.push(m), error: (_o, m) => logged.push(m) };
    const lock = await holdInstanceLock(a.db, log);
    const before = (await heldLocks()).find((l) => l.objid === lock.owner);
    assert.ok(before);
    await sql`SELECT pg_terminate_backend(${before.pid})`.execute(a.db);
    const again = await waitFor(async () => (await heldLocks()).find((l) => l.objid === lock.owner && l.pid !== before.pid));
    assert.ok(again);
    await waitFor(async () => (logged.includes('instance lock taken again') ? true : undefined));
    assert.ok(logged.some((m) => /lost; reconnecting/.test(m)));
    await lock.close();
    assert.equal(
      (await heldLocks()).find((l) => l.objid === lock.owner),
      undefined,
      'close releases it',
    );
  });

  test('right after a database restart (every lock lost at once) a sweep leaves live answers alone until the locks settle', async () => {
    const silent: LockLog = { info() {}, warn() {}, error() {} };
    const generating = await holdInstanceLock(a.db, silent); // a process with an answer running
    const sweeping = await holdInstanceLock(a.db, silent); // another one, whose sweep timer fires just then
    const idresponse = await streamingAnswerOf(generating.owner, 'going on');
    try {
      assert.equal(await sweepOrphanedAnswers(b.db, sweeping), 0, 'a lock held since start has nothing to settle');
      // What a restart does to both lock connections; neither has reconnected yet (RECONNECT_DELAY_MS).
      const pids = (await heldLocks()).filter((l) => l.objid === generating.owner || l.objid === sweeping.owner).map((l) => l.pid);
      assert.equal(pids.length, 2);
      for (const pid of pids) await sql`SELECT pg_terminate_backend(${pid})`.execute(a.db);
      await waitFor(async () => ((await heldLocks()).some((l) => l.objid === generating.owner) ? undefined : true));
      await waitFor(async () => (sweeping.heldForMs() === 0 ? true : undefined));
      assert.equal(await sweepOrphanedAnswers(b.db, sweeping), 'unsettled');
      assert.equal((await rowOf(idresponse)).txstatus, 'streaming', 'the live answer is not taken for an orphan');
      // Once both have their locks again, the sweeper's says it was taken afresh (and needs SWEEP_SETTLE_MS).
      await waitFor(async () => ((await heldLocks()).some((l) => l.objid === generating.owner) ? true : undefined));
      await waitFor(async () => (sweeping.heldForMs() > 0 ? true : undefined));
      assert.ok(sweeping.heldForMs() < SWEEP_SETTLE_MS);
      assert.equal(await sweepOrphanedAnswers(b.db, sweeping), 'unsettled');
      assert.equal(await markOrphanedResponsesInterrupted(b.db), 0, 'and by then its owner holds its lock again');
    } finally {
      await generating.close();
      await sweeping.close();
    }
  });

  test("an instance's close releases its lock", async () => {
    const c = await startTestApp({}, b);
    const ids = async () => new Set((await heldLocks()).map((l) => l.objid));
    assert.equal((await ids()).size, 3);
    await c.close();
    assert.equal((await ids()).size, 2);
  });
});
