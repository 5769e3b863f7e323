import { performance } from 'node:perf_hooks';
import { type ChatBenchWorld, readEvents, startChatBenchWorld } from './chat-world.ts';
import { median, percentile } from './lib.ts';

/**
 * The app's overhead on time to first token: the same prompt sent (a) straight to the fake model server and
 * (b) through POST /api/chats/:id/messages, alternating, each timed until its first token arrives.
 * Reported: medians and the median of the per-pair differences.
 */
const ROUNDS = Number(process.env.TTFT_ROUNDS ?? 200);

async function direct(world: ChatBenchWorld): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${world.llm.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-echo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello there' }] }),
  });
  let first = 0;
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    if (!first && decoder.decode(chunk).includes('"content"')) first = performance.now() - start;
  }
  return first;
}

async function viaApp(world: ChatBenchWorld, user: { cookie: string; csrf: string }): Promise<number> {
  const chatId = await world.newChat(user);
  const start = performance.now();
  const res = await fetch(`${world.baseUrl}/api/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: user.cookie, 'x-csrf-token': user.csrf },
    body: JSON.stringify({ content: 'hello there' }),
  });
  let first = 0;
  await readEvents(res, (event) => {
    if (event === 'token' && !first) first = performance.now() - start;
  });
  return first;
}

export async function benchTtft(kind: 'pglite' | 'postgres'): Promise<Record<string, string | number>> {
  const world = await startChatBenchWorld(kind);
  try {
    const [user] = await world.makeUsers(1);
    if (!user) throw new Error('no user');
    for (let i = 0; i < 20; i++) await Promise.all([direct(world), viaApp(world, user)]).catch(() => undefined); // warm-up
    const directMs: number[] = [];
    const appMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      directMs.push(await direct(world));
      appMs.push(await viaApp(world, user));
    }
    const overhead = appMs.map((v, i) => v - (directMs[i] as number));
    return {
      database: kind,
      rounds: ROUNDS,
      'direct TTFT median ms': median(directMs).toFixed(2),
      'via app TTFT median ms': median(appMs).toFixed(2),
      'overhead median ms': median(overhead).toFixed(2),
      'overhead p90 ms': percentile(overhead, 90).toFixed(2),
    };
  } finally {
    await world.close();
  }
}

if (import.meta.main) {
  console.table([await benchTtft('pglite'), ...(process.env.TEST_DATABASE_URL ? [await benchTtft('postgres')] : [])]);
}
