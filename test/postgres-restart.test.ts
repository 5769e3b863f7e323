import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { isDatabaseUnavailable } from '../src/db/outage.ts';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { startTestApp } from './app.ts';
import { testDbKind } from './database.ts';
import { type PrivateCluster, startPrivateCluster } from './private-postgres.ts';
import { type Browser, freePort, postJsonOver, readSse, registerOver, type ServerProcess, spawnServer } from './server-process.ts';

// PostgreSQL stopped and started under a real `node src/server.ts` while clients keep writing and reading. The
// machine's shared cluster is never touched: the test has a cluster of its own (test/private-postgres.ts). It runs
// on the PostgreSQL pass only (PGlite is in the app's own process: there is no server to restart) and always in CI.
// The two smaller tests after it (readiness when no connection is free, which errors count as an outage) run on both.

/** "Fails fast": no request started during the outage may take longer than this (the pool's connect timeout is 5 s). */
const FAIL_FAST_MS = 5_000;
const OUTAGE_MS = 3_000;
/** Every request has a client-side limit: a hang shows as a failed sample, not as a test that never ends. */
const REQUEST_LIMIT_MS = 30_000;

interface Sample {
  kind: string;
  startedAt: number;
  ms: number;
  status: number; // 0: no HTTP answer at all (connection refused, reset, timed out)
}

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'held', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
const HELD_ANSWER = ['Begun ', 'before the outage, ', 'finished during it.'];

/** A model server whose answers send two chunks, then the rest only once `finish()` was called. */
function startHeldModel(): Promise<{ server: Server; url: string; finish(): void }> {
  let finish = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk(HELD_ANSWER[0] as string) + chunk(HELD_ANSWER[1] as string));
    await finished;
    res.end(`${chunk(HELD_ANSWER[2] as string, 'stop')}data: [DONE]\n\n`);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, finish })),
  );
}

let cluster: PrivateCluster;
let llm: FakeLlm;
let held: Awaited<ReturnType<typeof startHeldModel>>;
let server: ServerProcess;
before(
  async () => {
    if (testDbKind === 'pglite') return;
    llm = await startFakeLlm();
    held = await startHeldModel();
    cluster = await startPrivateCluster();
    server = await spawnServer({
      DATABASE_URL: cluster.url,
      APP_SECRET: 'restart-test-secret-restart-test-secret',
      OPENAI_BASE_URL: llm.baseUrl,
      OPENAI_MODELS: 'fake-echo',
      LOG_LEVEL: 'warn',
    });
  },
  { timeout: 120_000 },
);
after(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  await cluster?.destroy();
  await llm?.close();
  held?.server.closeAllConnections();
  held?.server.close();
});

test('PostgreSQL stopped (fast, then immediate) and started while requests flow: 503 fast, /readyz follows, recovery by itself, no acknowledged write lost', {
  skip: testDbKind === 'pglite' ? 'PGlite has no server to restart' : false,
  timeout: 120_000,
}, async () => {
  const base = server.baseUrl;
  const samples: Sample[] = [];
  const readiness: Array<{ at: number; status: number }> = [];
  const send = async (kind: string, who: Browser | null, method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const startedAt = Date.now();
    let status = 0;
    let json: unknown = null;
    try {
      const res = await fetch(`${base}${url}`, {
        method,
        headers: {
          ...(who ? { cookie: who.cookie, 'x-csrf-token': who.csrf } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
      });
      status = res.status;
      // The time to the status line is what a user waits for an answer to begin (an answer's stream goes on after).
      samples.push({ kind, startedAt, ms: Date.now() - startedAt, status });
      const text = await res.text();
      json = (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
    } catch {
      if (status === 0) samples.push({ kind, startedAt, ms: Date.now() - startedAt, status });
    }
    return { status, json };
  };

  const writers = await Promise.all([1, 2, 3].map((i) => registerOver(base, `writer${i}@example.com`)));
  const prompter = await registerOver(base, 'prompter@example.com');
  const reader = await registerOver(base, 'reader@example.com');
  const page = await (await fetch(`${base}/chat`, { headers: { cookie: reader.cookie } })).text();
  const modelId = Number(/<option value="(\d+)"/.exec(page)?.[1]);
  const readerChat = (await send('warm-up', reader, 'POST', '/api/chats', { llm: modelId })).json as { id: number };

  // What the server acknowledged (2xx); all of it must be in the database at the end.
  const chatsCreated = new Set<number>();
  const titles = new Map<number, string>();
  const prompts: string[] = [];
  let running = true;
  const loop = async (step: () => Promise<void>) => {
    while (running) {
      await step();
      await sleep(30); // a steady flow that leaves the two cores to the server and PostgreSQL
    }
  };
  const createChat = async (who: Browser) => {
    const r = await send('create chat', who, 'POST', '/api/chats', { llm: modelId });
    if (r.status === 201) chatsCreated.add((r.json as { id: number }).id);
    return r.status === 201 ? (r.json as { id: number }).id : undefined;
  };
  let n = 0;
  const traffic = [
    ...writers.map((who) =>
      loop(async () => {
        const id = await createChat(who);
        if (id === undefined) return;
        const title = `renamed ${++n}`;
        if ((await send('rename chat', who, 'PATCH', `/api/chats/${id}`, { title })).status === 200) titles.set(id, title);
      }),
    ),
    loop(async () => {
      const id = await createChat(prompter);
      if (id === undefined) return;
      const content = `prompt ${++n}`;
      if ((await send('prompt', prompter, 'POST', `/api/chats/${id}/messages`, { content })).status === 200) prompts.push(content);
    }),
    loop(async () => {
      await send('chat page', reader, 'GET', '/chat');
      await send('chat JSON', reader, 'GET', `/api/chats/${readerChat.id}`);
    }),
    loop(async () => {
      const at = Date.now();
      readiness.push({ at, status: (await send('readyz', null, 'GET', '/readyz')).status });
    }),
  ];

  // An answer whose model finishes while the database is down: its final write must still be stored.
  const heldModel = await (async () => {
    const c = new pg.Client({ connectionString: cluster.url });
    await c.connect();
    const { rows } = await c.query<{ idllm: number }>(
      "INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel, is_enabled) VALUES ('Held', $1, 'held', true) RETURNING idllm",
      [held.url],
    );
    await c.end();
    return rows[0]?.idllm as number;
  })();
  const heldChat = (await send('warm-up', reader, 'POST', '/api/chats', { llm: heldModel })).json as { id: number };
  const heldRes = await postJsonOver(base, reader, `/api/chats/${heldChat.id}/messages`, { content: 'a held answer' });
  assert.equal(heldRes.status, 200);
  let heldEndedAt = 0;
  let heldStreaming = () => {};
  const heldStarted = new Promise<void>((resolve) => (heldStreaming = resolve));
  const heldEvents = readSse(heldRes, (event) => {
    if (event === 'token') heldStreaming();
    if (event === 'done' || event === 'error') heldEndedAt = Date.now();
  });
  await heldStarted;

  const firstReadyAfter = async (t: number) => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(20)) {
      const ok = readiness.find((r) => r.at >= t && r.status === 200);
      if (ok) return ok.at;
    }
    throw new Error(`/readyz did not answer 200 again within 30 s\n${server.output().slice(-3000)}`);
  };
  // from: pg_ctl stop begins; down: it has stopped; up: pg_ctl start begins; to: it says the server accepts connections.
  const outages: Array<{ mode: string; from: number; down: number; up: number; to: number; recoveredAt: number; firstWriteAt: number }> = [];
  try {
    await sleep(1_500);
    for (const mode of ['fast', 'immediate'] as const) {
      const from = Date.now();
      await cluster.stop(mode);
      const down = Date.now();
      if (mode === 'fast') held.finish();
      await sleep(OUTAGE_MS);
      const up = Date.now();
      await cluster.start();
      const to = Date.now();
      const recoveredAt = await firstReadyAfter(up);
      const firstWrite = await (async () => {
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(20)) {
          const s = samples.find((x) => x.startedAt >= up && x.kind === 'create chat' && x.status === 201);
          if (s) return s.startedAt + s.ms;
        }
        throw new Error('no chat could be created after the restart');
      })();
      outages.push({ mode, from, down, up, to, recoveredAt, firstWriteAt: firstWrite });
      await sleep(1_500);
    }
  } finally {
    running = false;
    await Promise.all(traffic);
  }

  const report: string[] = [];
  for (const o of outages) {
    const during = samples.filter((s) => s.startedAt >= o.from && s.startedAt < o.to && s.kind !== 'readyz');
    const slowest = during.reduce((a, b) => (b.ms > a.ms ? b : a));
    const statuses = [...new Set(during.map((s) => s.status))].sort();
    report.push(
      `${o.mode}: ${during.length} requests during the outage, statuses ${statuses.join('/')}, slowest ${slowest.ms} ms (${slowest.kind}); ` +
        `pg_ctl stop took ${o.down - o.from} ms, start ${o.to - o.up} ms; ready again ${o.recoveredAt - o.up} ms and first write done ${o.firstWriteAt - o.up} ms after the start began`,
    );
    assert.ok(
      during.some((s) => s.status === 503),
      `${o.mode}: no 503 during the outage: ${statuses}`,
    );
    const wrong = during.filter((s) => s.status !== 503 && (s.status < 200 || s.status >= 300));
    assert.deepEqual(
      wrong.map((s) => `${s.kind} ${s.status}`),
      [],
      `${o.mode}: during the outage, every answer is a success or a 503`,
    );
    assert.ok(slowest.ms < FAIL_FAST_MS, `${o.mode}: the slowest request during the outage took ${slowest.ms} ms (${slowest.kind})`);
    const notReady = readiness.filter((r) => r.at >= o.down && r.at < o.up);
    assert.ok(notReady.length > 0 && notReady.every((r) => r.status === 503), `${o.mode}: /readyz during the outage: ${notReady.map((r) => r.status)}`);
    assert.ok(o.recoveredAt - o.to < 5_000, `${o.mode}: ready again ${o.recoveredAt - o.to} ms after PostgreSQL was back`);
    // Once ready again, everything works again: no broken connection was kept in the pool.
    const afterwards = samples.filter((s) => s.startedAt >= o.recoveredAt && s.startedAt < o.recoveredAt + 1_000);
    assert.ok(afterwards.length > 0);
    assert.deepEqual(
      afterwards.filter((s) => s.status < 200 || s.status >= 300).map((s) => `${s.kind} ${s.status}`),
      [],
      `${o.mode}: failures after /readyz said ready again`,
    );
  }
  assert.equal(server.child.exitCode, null, 'the server process kept running (no restart)');
  const heldLast = (await heldEvents).at(-1);
  const fast = outages[0];
  assert.ok(fast);
  report.push(`the answer whose model finished during the outage: ${heldLast?.event} ${heldEndedAt - fast.down} ms after the stop`);
  // Each failed request was an outage the error handler recognised (a warning), none an "unhandled error" (a 500).
  assert.doesNotMatch(server.output(), /unhandled error/);
  // The work that ticks (the instance lock's reconnects each second, the sweep, the answers' saves) logged each outage
  // once when it began and once when it ended, with its length — not an error per tick.
  const began = server.output().match(/database unavailable: background work/g) ?? [];
  const ended = server.output().match(/database available again after [\d.]+ s/g) ?? [];
  assert.equal(began.length, outages.length, `outages logged as begun: ${began.length}\n${server.output().slice(-3000)}`);
  assert.equal(ended.length, outages.length, `outages logged as ended: ${ended.join(', ')}`);
  assert.doesNotMatch(server.output(), /could not take the instance lock again|sweep for answers of stopped processes failed|could not save partial answer/);
  report.push(`the log: ${ended.join(', ')}`);

  const check = new pg.Client({ connectionString: cluster.url });
  await check.connect();
  try {
    const ids = [...chatsCreated];
    const found = await check.query<{ idchat: number; txtitle: string | null }>('SELECT idchat, txtitle FROM chatbot_schema.chat WHERE idchat = ANY($1)', [
      ids,
    ]);
    const foundTitles = new Map(found.rows.map((r) => [r.idchat, r.txtitle]));
    const lostTitles = [...titles].filter(([id, title]) => foundTitles.get(id) !== title);
    const messages = await check.query<{ txmessage: string }>('SELECT txmessage FROM chatbot_schema.message WHERE txmessage = ANY($1)', [prompts]);
    report.push(
      `acknowledged: ${ids.length} chats created, ${titles.size} renames, ${prompts.length} prompts; ` +
        `found: ${found.rowCount} chats, ${titles.size - lostTitles.length} titles, ${messages.rowCount} prompts`,
    );
    console.log(`# ${report.join('\n# ')}`);
    assert.equal(found.rowCount, ids.length, 'every acknowledged chat exists');
    assert.deepEqual(lostTitles, [], 'every acknowledged rename is stored');
    assert.equal(messages.rowCount, prompts.length, 'every acknowledged prompt is stored');
    const heldRow = await check.query<{ txstatus: string; txmarkdown: string }>('SELECT txstatus, txmarkdown FROM chatbot_schema.response WHERE idchat = $1', [
      heldChat.id,
    ]);
    assert.deepEqual(heldRow.rows, [{ txstatus: 'complete', txmarkdown: HELD_ANSWER.join('') }], 'the answer finished during the outage is stored');
    assert.equal(heldLast?.event, 'done');
    assert.ok(ids.length > 20 && titles.size > 10 && prompts.length > 5, 'traffic flowed');
  } finally {
    await check.end();
  }
});

test('/readyz answers 503 within 2 s when the database gives it no connection, and 200 once one is free', { timeout: 60_000 }, async () => {
  const t = await startTestApp();
  // Every pooled connection taken and held (PGlite has one; PostgreSQL's pool here ten): the probe's SELECT waits.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const holders = Array.from({ length: t.database.kind === 'pglite' ? 1 : 10 }, () => t.database.db.connection().execute(() => held));
  try {
    await sleep(200);
    const startedAt = Date.now();
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    const tookMs = Date.now() - startedAt;
    assert.equal(res.statusCode, 503);
    assert.ok(tookMs >= 1_900 && tookMs < 4_000, `answered after ${tookMs} ms`);
    release();
    await Promise.all(holders);
    assert.equal((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  } finally {
    release(); // the pool's close waits for every connection to come back
    await Promise.allSettled(holders);
    await t.close();
  }
});

test("only errors saying the database is unreachable become 503: a query's own error stays a 500", async () => {
  const silent = createServer(() => {}); // accepts, never answers: the pool's connect timeout runs out
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as AddressInfo).port;
  const closedPort = await freePort();
  const t = await startTestApp();
  const failureOf = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('expected an error'),
      (err: unknown) => err,
    );
  try {
    const refused = await failureOf(new pg.Client({ connectionString: `postgres://x@127.0.0.1:${closedPort}/x` }).connect());
    const pool = new pg.Pool({ connectionString: `postgres://x@127.0.0.1:${silentPort}/x`, connectionTimeoutMillis: 300 });
    const timedOut = await failureOf(pool.query('SELECT 1'));
    await pool.end();
    assert.ok(isDatabaseUnavailable(refused), String(refused));
    assert.ok(isDatabaseUnavailable(timedOut), String(timedOut));
    const missing = await failureOf(sql`SELECT * FROM no_such_table`.execute(t.database.db));
    const duplicate = await failureOf(sql`INSERT INTO chatbot_schema.role (idrole, txname) VALUES (1, 'Admin')`.execute(t.database.db));
    assert.equal(isDatabaseUnavailable(missing), false, String(missing));
    assert.equal(isDatabaseUnavailable(duplicate), false, String(duplicate));
    assert.equal(isDatabaseUnavailable(new Error('boom')), false);
  } finally {
    silent.closeAllConnections();
    silent.close();
    await t.close();
  }
});
