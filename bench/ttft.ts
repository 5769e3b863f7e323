import { performance } from 'node:perf_hooks';
import { type AppProcess, readEvents, spawnApp, spawnFakeLlm } from './chat-world.ts';
import { type DbKind, median, percentile, type Row } from './lib.ts';

/**
 * The app's overhead on time to first token: the same prompt sent (a) straight to the fake model server and
 * (b) through POST /api/chats/:id/messages, alternating, each timed until its first token arrives. Three
 * processes, as in production: this client, the app (`src/server.ts`, its real configuration) and the model
 * server. Reported: medians, and the median and p90 of the per-pair differences.
 */
const ROUNDS = Number(process.env.TTFT_ROUNDS ?? 200);
const WARM_UP_ROUNDS = 100;
const BODY = { model: 'fake-echo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello there' }] };

async function direct(llmBaseUrl: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${llmBaseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BODY) });
  let first = 0;
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    // The first token, as the app counts it: a non-empty content delta (servers open with an empty role delta).
    if (!first && /"content":"[^"]/.test(decoder.decode(chunk))) first = performance.now() - start;
  }
  return first;
}

async function viaApp(app: AppProcess): Promise<number> {
  const headers = { 'content-type': 'application/json', cookie: app.user.cookie, 'x-csrf-token': app.user.csrf };
  const created = await fetch(`${app.baseUrl}/api/chats`, { method: 'POST', headers, body: JSON.stringify({ llm: app.modelId }) });
  const { id } = (await created.json()) as { id: number };
  const start = performance.now();
  const res = await fetch(`${app.baseUrl}/api/chats/${id}/messages`, { method: 'POST', headers, body: JSON.stringify({ content: 'hello there' }) });
  let first = 0;
  await readEvents(res, (event) => {
    if (event === 'token' && !first) first = performance.now() - start;
  });
  if (!first) throw new Error(`no token from the app (HTTP ${res.status})`);
  return first;
}

export async function benchTtft(kind: DbKind): Promise<Row> {
  const llm = await spawnFakeLlm();
  const app = await spawnApp(kind, llm.baseUrl).catch(async (err) => {
    await llm.close();
    throw err;
  });
  try {
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      await direct(llm.baseUrl);
      await viaApp(app);
    }
    const directMs: number[] = [];
    const appMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      directMs.push(await direct(llm.baseUrl));
      appMs.push(await viaApp(app));
    }
    const overhead = appMs.map((v, i) => v - (directMs[i] as number));
    return {
      database: kind === 'pglite' ? 'PGlite on disk' : 'PostgreSQL',
      rounds: ROUNDS,
      'direct TTFT median ms': median(directMs).toFixed(2),
      'via app TTFT median ms': median(appMs).toFixed(2),
      'overhead median ms': median(overhead).toFixed(2),
      'overhead p90 ms': percentile(overhead, 90).toFixed(2),
    };
  } finally {
    await app.close();
    await llm.close();
  }
}

if (import.meta.main) {
  console.table([await benchTtft('pglite'), ...(process.env.TEST_DATABASE_URL ? [await benchTtft('postgres')] : [])]);
}
