import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../src/db/database.ts';
import { openScratchPostgres } from '../test/database.ts';
import { adoptedMessages, fillAdoptedWorld } from './adopted-world.ts';
import { type DbKind, freePort, median, percentile, type Row, root } from './lib.ts';

/**
 * `npm run bench catch-up`: the first start of `node src/server.ts` on a big database the Flask prototype left
 * (bench/adopted-world.ts; PostgreSQL: 2,500 accounts × 20 chats × 20 prompts = 1M answers, PGlite on disk: a
 * tenth, `BENCH_ADOPTED_USERS`), as an operator adopting it runs it: time from spawn to the first 200 from /readyz
 * (the migrations), then to the end of each catch-up job as the server logs it (usage statistics, then the
 * adopted answers' re-rendering), and /readyz's answer time sampled every 250 ms meanwhile (is the app usable
 * while it catches up?). `BENCH_CATCH_UP_MAX_S` bounds the wait for the end: past it, the row says how far it got.
 */
const POLL_MS = 20;
const SAMPLE_MS = 250;
const MAX_CATCH_UP_S = Number(process.env.BENCH_CATCH_UP_MAX_S ?? 3600);

function sizeFor(kind: DbKind) {
  const users = Number(process.env.BENCH_ADOPTED_USERS ?? (kind === 'postgres' ? 2500 : 250));
  return { users, chatsPerUser: 20, messagesPerChat: 20 };
}

interface LogLine {
  msg?: string;
  job?: string;
  percent?: number | null;
  time?: number;
}

export async function benchCatchUp(kind: DbKind): Promise<Row> {
  const size = sizeFor(kind);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-adopt-'));
  const env: Record<string, string> = { DATA_DIR: dataDir };
  let dropScratch = async () => {};
  const loadStarted = performance.now();
  if (kind === 'postgres') {
    const scratch = await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', 'parley_bench_adopt', false);
    await fillAdoptedWorld(scratch.db, size);
    env.DATABASE_URL = scratch.url;
    dropScratch = scratch.close;
  } else {
    const opened = await openDatabase({ dataDir });
    await fillAdoptedWorld(opened.db, size);
    await opened.close();
  }
  const loadS = (performance.now() - loadStarted) / 1000;
  try {
    const first = await firstStart(env);
    // The same server on the same, now migrated, database: the floor of a start on this machine at this moment.
    const later = await startUntilReady(env);
    await stop(later.child);
    return {
      database: kind,
      'adopted answers': adoptedMessages(size).toLocaleString('en-US'),
      'load s': loadS.toFixed(0),
      ...first,
      'later start: ready s': (later.readyMs / 1000).toFixed(1),
    };
  } finally {
    await dropScratch();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function startUntilReady(env: Record<string, string>, onLine: (log: LogLine, atMs: number) => void = () => {}) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      NODE_ENV: 'production',
      APP_SECRET: 'bench-secret-that-is-long-enough-0123456789',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // JSON lines (production logging), each with the time it was read here.
  let buffer = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let cut = buffer.indexOf('\n'); cut >= 0; cut = buffer.indexOf('\n')) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      try {
        onLine(JSON.parse(line) as LogLine, performance.now() - started);
      } catch {
        // not a log line
      }
    }
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
      if (performance.now() - started > 600_000) throw new Error('the server was not ready within 10 minutes');
      const res = await fetch(`${baseUrl}/readyz`).catch(() => undefined);
      if (res?.status === 200) return { child, baseUrl, readyMs: performance.now() - started };
      await sleep(POLL_MS);
    }
  } catch (err) {
    await stop(child);
    throw err;
  }
}

async function firstStart(env: Record<string, string>): Promise<Row> {
  // The catch-up's progress and end, as the server logs them.
  const finished = new Map<string, number>();
  let lastPercent: number | null | undefined;
  const { child, baseUrl, readyMs } = await startUntilReady(env, (log, atMs) => {
    if (log.job && log.msg?.includes(' finished in ')) finished.set(log.job, atMs);
    if (log.job === ADOPTED && log.percent !== undefined) lastPercent = log.percent;
  });
  try {
    // /readyz while the jobs run: one query through the same pool (PGlite: the same single connection).
    const answers: number[] = [];
    let notReady = 0;
    const deadline = performance.now() + MAX_CATCH_UP_S * 1000;
    while (!finished.has(ADOPTED) && performance.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
      const t = performance.now();
      const res = await fetch(`${baseUrl}/readyz`).catch(() => undefined);
      answers.push(performance.now() - t);
      if (res?.status !== 200) notReady++;
      await sleep(SAMPLE_MS);
    }
    const seconds = (ms: number | undefined) => (ms === undefined ? 'not yet' : (ms / 1000).toFixed(1));
    return {
      'ready s': seconds(readyMs),
      'statistics counted s': seconds(finished.get(STATS)),
      'answers re-rendered s': finished.has(ADOPTED) ? seconds(finished.get(ADOPTED)) : `not within ${MAX_CATCH_UP_S} s (${lastPercent ?? 0} %)`,
      '/readyz during catch-up ms (median / p99 / max)': answers.length
        ? `${median(answers).toFixed(0)} / ${percentile(answers, 99).toFixed(0)} / ${Math.max(...answers).toFixed(0)}`
        : '',
      'not ready during catch-up': `${notReady} of ${answers.length}`,
    };
  } finally {
    await stop(child);
  }
}

const ADOPTED = 're-rendering adopted answers';
const STATS = 'counting usage statistics';

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
