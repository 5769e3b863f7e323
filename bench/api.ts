import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.ts';
import { openScratchPostgres } from '../test/database.ts';
import { spawnFakeLlm } from './chat-world.ts';
import { type DbKind, freePort, median, percentile, type Row, registerViaForm, root } from './lib.ts';

/**
 * The OpenAI-compatible API (issue 18), against the fake model server in a process of its own and the app as
 * `npm start` runs it:
 * - api-ttft: time to first token through POST /v1/chat/completions against calling the same upstream directly,
 *   alternating, 200 sequential streamed calls after 100 of warm-up (target: < 2 ms added on PostgreSQL);
 * - api-concurrent: 1,000 streamed calls at once through one process, then through two processes on one database:
 *   errors, every call counted exactly once (api_call rows and the rollups), peak RSS of each app process;
 * - api-throughput: non-stream calls per second through /v1 against a bare node:http proxy doing only fetch.
 */
const ROUNDS = Number(process.env.TTFT_ROUNDS ?? 200);
const WARM_UP_ROUNDS = 100;
const CONCURRENT = Number(process.env.API_CONCURRENT ?? 1000);
const MODEL = 'fake-echo';
const streamBody = (content: string) => JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content }] });

interface ApiApp {
  baseUrl: string;
  key: string;
  child: ChildProcess;
  close(): Promise<void>;
}

/** Peak resident set of a process (Linux VmHWM), MiB. */
function peakRssMiB(pid: number | undefined): string {
  try {
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return (kb / 1024).toFixed(0);
  } catch {
    return 'n/a';
  }
}

/** The app in its own process on `databaseUrl` (or PGlite in a fresh DATA_DIR), its model bootstrapped, one key. */
async function spawnApiApp(llmBaseUrl: string, databaseUrl: string | undefined, withKey = true): Promise<ApiApp> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-api-'));
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      OPENAI_BASE_URL: llmBaseUrl,
      OPENAI_MODELS: MODEL,
      DB_POOL_SIZE: '20',
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (let waited = 0; ; waited += 50) {
      if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}`);
      if (waited > 120_000) throw new Error('the app was not ready within two minutes');
      if ((await fetch(`${baseUrl}/readyz`).catch(() => undefined))?.status === 200) break;
      await sleep(50);
    }
    let key = '';
    if (withKey) {
      const user = await registerViaForm(baseUrl, { username: 'Bench', email: `bench-${port}@example.com`, password: 'bench password 123' });
      const res = await fetch(`${baseUrl}/api/keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: user.cookie, 'x-csrf-token': user.csrf },
        body: JSON.stringify({ name: 'bench' }),
      });
      if (res.status !== 201) throw new Error(`POST /api/keys: ${res.status} ${await res.text()}`);
      key = ((await res.json()) as { key: string }).key;
    }
    return { baseUrl, key, child, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Time until the first non-empty content delta of a streamed completion; the stream is read to its end. */
async function firstTokenMs(url: string, headers: Record<string, string>, body: string): Promise<{ ttft: number; ok: boolean; why?: string }> {
  const start = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  if (res.status !== 200) return { ttft: 0, ok: false, why: `HTTP ${res.status}` };
  let ttft = 0;
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    const piece = decoder.decode(chunk, { stream: true });
    text += piece;
    if (!ttft && /"content":"[^"]/.test(piece)) ttft = performance.now() - start;
  }
  const ok = text.includes('data: [DONE]') && !text.includes('"error"');
  return { ttft, ok, ...(ok ? {} : { why: 'broken stream' }) };
}

async function scratchUrl(kind: DbKind): Promise<{ url: string | undefined; close(): Promise<void> }> {
  if (kind === 'pglite') return { url: undefined, close: async () => {} };
  const scratch = await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', 'parley_bench');
  return { url: scratch.url, close: () => scratch.close() };
}

export async function benchApiTtft(kind: DbKind): Promise<Row> {
  const llm = await spawnFakeLlm();
  const db = await scratchUrl(kind);
  const app = await spawnApiApp(llm.baseUrl, db.url).catch(async (err) => {
    await llm.close();
    await db.close();
    throw err;
  });
  try {
    const body = streamBody('hello there');
    const auth = { authorization: `Bearer ${app.key}` };
    const direct = () => firstTokenMs(`${llm.baseUrl}/chat/completions`, {}, body);
    const viaApi = () => firstTokenMs(`${app.baseUrl}/v1/chat/completions`, auth, body);
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      await direct();
      await viaApi();
    }
    const directMs: number[] = [];
    const apiMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      directMs.push((await direct()).ttft);
      apiMs.push((await viaApi()).ttft);
    }
    const added = apiMs.map((v, i) => v - (directMs[i] as number));
    return {
      database: kind === 'pglite' ? 'PGlite on disk' : 'PostgreSQL',
      rounds: ROUNDS,
      'direct TTFT median ms': median(directMs).toFixed(2),
      '/v1 TTFT median ms': median(apiMs).toFixed(2),
      'added median ms': median(added).toFixed(2),
      'added p90 ms': percentile(added, 90).toFixed(2),
      load: (loadavg()[0] ?? 0).toFixed(1),
    };
  } finally {
    await app.close();
    await llm.close();
    await db.close();
  }
}

/** `CONCURRENT` streamed calls at once, spread over `processes` app processes on one PostgreSQL database. */
async function concurrentCalls(processes: number): Promise<Row> {
  const llm = await spawnFakeLlm();
  const db = await scratchUrl('postgres');
  const apps: ApiApp[] = [];
  try {
    for (let i = 0; i < processes; i++) apps.push(await spawnApiApp(llm.baseUrl, db.url, i === 0));
    const key = apps[0]?.key ?? '';
    const body = streamBody('Tell me a story [[slow:5]] [[long:40]]');
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) =>
        firstTokenMs(`${apps[i % processes]?.baseUrl}/v1/chat/completions`, { authorization: `Bearer ${key}` }, body).catch((err: Error) => ({
          ttft: 0,
          ok: false,
          why: err.message,
        })),
      ),
    );
    const wallMs = performance.now() - started;
    const rss = apps.map((a) => peakRssMiB(a.child.pid)).join(' + ');
    await sleep(500); // the last calls' end records are written just after their [DONE]
    const opened = await openDatabase({ databaseUrl: db.url });
    try {
      const counted = await sql<{ calls: number; complete: number; prompts: string; answers: string }>`
        SELECT (SELECT count(*)::int FROM chatbot_schema.api_call) AS calls,
               (SELECT count(*)::int FROM chatbot_schema.api_call WHERE txstatus = 'complete') AS complete,
               (SELECT sum(nprompts) FROM chatbot_schema.usage_day_model WHERE txsource = 'api') AS prompts,
               (SELECT sum(nresponses) FROM chatbot_schema.usage_day_model WHERE txsource = 'api') AS answers`.execute(opened.db);
      const c = counted.rows[0];
      return {
        processes,
        calls: CONCURRENT,
        errors: errorsOf(results),
        'api_call rows (complete)': `${c?.calls} (${c?.complete})`,
        'rollup prompts / answers': `${c?.prompts} / ${c?.answers}`,
        'TTFT p50 ms': median(results.map((r) => r.ttft)).toFixed(0),
        'TTFT p99 ms': percentile(
          results.map((r) => r.ttft),
          99,
        ).toFixed(0),
        'wall ms': wallMs.toFixed(0),
        'peak RSS MiB': rss,
        load: (loadavg()[0] ?? 0).toFixed(1),
      };
    } finally {
      await opened.close();
    }
  } finally {
    for (const app of apps) await app.close();
    await llm.close();
    await db.close();
  }
}

function errorsOf(results: Array<{ ok: boolean; why?: string }>): string | number {
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return 0;
  const kinds = new Map<string, number>();
  for (const r of failed) kinds.set(r.why ?? '?', (kinds.get(r.why ?? '?') ?? 0) + 1);
  return `${failed.length} (${[...kinds].map(([k, n]) => `${k}: ${n}`).join(', ')})`;
}

export async function benchApiConcurrent(): Promise<Row[]> {
  if (!process.env.TEST_DATABASE_URL) return [{ skipped: 'needs TEST_DATABASE_URL (PostgreSQL)' }];
  return [await concurrentCalls(1), await concurrentCalls(2)];
}

export async function benchApiThroughput(kind: DbKind): Promise<Row> {
  const llm = await spawnFakeLlm();
  const db = await scratchUrl(kind);
  const app = await spawnApiApp(llm.baseUrl, db.url);
  const proxy = spawn(process.execPath, ['bench/api-proxy.ts'], {
    cwd: root,
    env: { ...process.env, UPSTREAM_URL: llm.baseUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const proxyUrl = await new Promise<string>((resolve, reject) => {
      proxy.stdout?.on('data', (d: Buffer) => {
        const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(d.toString())?.[1];
        if (url) resolve(url);
      });
      proxy.once('exit', (code) => reject(new Error(`the proxy exited with ${code}`)));
    });
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello there' }] });
    const run = (url: string, headers: Record<string, string>) =>
      autocannon({ url, method: 'POST', connections: 20, duration: 10, headers: { 'content-type': 'application/json', ...headers }, body });
    await run(`${proxyUrl}/chat/completions`, {}); // warm-up of both, then the measured runs
    await run(`${app.baseUrl}/v1/chat/completions`, { authorization: `Bearer ${app.key}` });
    const bare = await run(`${proxyUrl}/chat/completions`, {});
    const api = await run(`${app.baseUrl}/v1/chat/completions`, { authorization: `Bearer ${app.key}` });
    return {
      database: kind === 'pglite' ? 'PGlite on disk' : 'PostgreSQL',
      'bare proxy req/s': bare.requests.average.toFixed(0),
      '/v1 req/s': api.requests.average.toFixed(0),
      ratio: (api.requests.average / bare.requests.average).toFixed(2),
      '/v1 p50 latency ms': api.latency.p50,
      'errors (bare, /v1)': `${bare.errors + bare.non2xx}, ${api.errors + api.non2xx}`,
      load: (loadavg()[0] ?? 0).toFixed(1),
    };
  } finally {
    proxy.kill();
    await app.close();
    await llm.close();
    await db.close();
  }
}
