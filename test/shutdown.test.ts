import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { askOver, placeForServer, readSse, spawnServer } from './server-process.ts';

// The real process, as `npm start` runs it: a signal must end it within SHUTDOWN_GRACE_S + 2 s with exit code 0,
// answers still running after the grace end `interrupted` with their text, and their streams get an `error` event.

let llm: FakeLlm;
before(async () => {
  llm = await startFakeLlm();
});
after(() => llm.close());

async function runUntilSignal(opts: { graceS: number; prompt: string; signal: NodeJS.Signals }) {
  const place = await placeForServer();
  const server = await spawnServer({ ...place.env, SHUTDOWN_GRACE_S: String(opts.graceS), OPENAI_BASE_URL: llm.baseUrl, OPENAI_MODELS: 'fake-echo' });
  try {
    const { chatId, res } = await askOver(server.baseUrl, opts.prompt);
    let signalledAt = 0;
    let duringGrace: Promise<number | string> = Promise.resolve('not asked');
    const events = await readSse(res, (event) => {
      if (event === 'token' && signalledAt === 0) {
        signalledAt = Date.now();
        server.child.kill(opts.signal);
        // While the answers drain, nothing new is taken on: the listening socket is closed at once.
        duringGrace = sleep(300).then(() =>
          fetch(`${server.baseUrl}/healthz`).then(
            (r) => r.status,
            () => 'refused',
          ),
        );
      }
    });
    const code = await server.exited;
    const elapsedMs = Date.now() - signalledAt;
    const db = await place.open();
    try {
      const row = await db.db
        .selectFrom('chatbot_schema.response')
        .select(['txstatus', 'txmarkdown', 'txerror'])
        .where('idchat', '=', chatId)
        .executeTakeFirstOrThrow();
      const streamed = events
        .filter((e) => e.event === 'token')
        .map((e) => (e.data as { text: string }).text)
        .join('');
      return { code, elapsedMs, events: events.map((e) => e.event), streamed, row, output: server.output(), duringGrace: await duringGrace };
    } finally {
      await db.close();
    }
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
    await place.cleanUp();
  }
}

test('SIGTERM with an answer streaming past the grace: exit 0 within grace + 2 s, the answer interrupted with its text, the stream told', async () => {
  const graceS = 2;
  const r = await runUntilSignal({ graceS, prompt: 'a long one [[slow:50]] [[long:400]]', signal: 'SIGTERM' });
  assert.equal(r.code, 0, r.output);
  assert.ok(r.elapsedMs < (graceS + 2) * 1000, `exited after ${r.elapsedMs} ms`);
  assert.ok(r.elapsedMs >= graceS * 1000 - 100, `the answer was given its grace (${r.elapsedMs} ms)`);
  assert.equal(r.events.at(-1), 'error', `events: ${r.events.join(',')}`);
  assert.equal(r.duringGrace, 'refused', 'a new connection during the grace is refused');
  assert.equal(r.row.txstatus, 'interrupted');
  assert.match(r.row.txerror ?? '', /shut down/);
  assert.ok(r.streamed.length > 0 && r.row.txmarkdown === r.streamed, 'the stored text is what was streamed');
  assert.ok((r.row.txmarkdown ?? '').split(/\s+/).filter(Boolean).length < 400, 'the answer was cut short');
});

test('SIGINT with an answer that finishes within the grace: it ends complete, then the process exits 0', async () => {
  const r = await runUntilSignal({ graceS: 8, prompt: 'a short one [[slow:50]] [[long:20]]', signal: 'SIGINT' });
  assert.equal(r.code, 0, r.output);
  assert.ok(r.elapsedMs < 8_000, `exited after ${r.elapsedMs} ms, not at the end of the grace`);
  assert.equal(r.events.at(-1), 'done');
  assert.equal(r.row.txstatus, 'complete');
  assert.equal((r.row.txmarkdown ?? '').split(/\s+/).filter(Boolean).length, 20);
});
