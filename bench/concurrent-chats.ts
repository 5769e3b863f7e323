import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { readEvents, startChatBenchWorld } from './chat-world.ts';
import { median, percentile } from './lib.ts';

/**
 * 200 users each stream one answer at the same moment (the fake model server sends ~40 chunks, 5 ms apart, from a
 * process of its own). Checks that every answer arrives whole over SSE and is stored complete, and reports
 * time to first token, total time and the app process's peak RSS.
 */
const CHATS = Number(process.env.CONCURRENT_CHATS ?? 200);
const PROMPT = 'Tell me a story [[slow:5]] [[long:40]]';

export async function benchConcurrentChats(kind: 'pglite' | 'postgres'): Promise<Record<string, string | number>> {
  const world = await startChatBenchWorld(kind);
  try {
    const users = await world.makeUsers(CHATS);
    const chats = await Promise.all(users.map((u) => world.newChat(u)));
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    const started = performance.now();
    const results = await Promise.all(
      users.map(async (user, i) => {
        const t0 = performance.now();
        let ttft = 0;
        const res = await fetch(`${world.baseUrl}/api/chats/${chats[i]}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', cookie: user.cookie, 'x-csrf-token': user.csrf },
          body: JSON.stringify({ content: PROMPT }),
        });
        if (res.status !== 200) return { ok: false, ttft: 0, total: 0, text: '', status: `HTTP ${res.status}` };
        const events = await readEvents(res, (event) => {
          if (event === 'token' && !ttft) ttft = performance.now() - t0;
        });
        const last = events.at(-1);
        const text = events
          .filter((e) => e.event === 'token')
          .map((e) => (e.data as { text: string }).text)
          .join('');
        return { ok: last?.event === 'done', ttft, total: performance.now() - t0, text, status: last?.event ?? 'none' };
      }),
    );
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    const stored = await sql<{ status: string; n: number; complete_words: number }>`
      SELECT txstatus AS status, count(*)::int AS n,
             count(*) FILTER (WHERE array_length(regexp_split_to_array(trim(txmarkdown), '\\s+'), 1) = 40)::int AS complete_words
      FROM chatbot_schema.response GROUP BY txstatus`.execute(world.db);
    const complete = stored.rows.find((r) => r.status === 'complete');
    const errors = results.filter((r) => !r.ok);
    const wholeOverSse = results.filter((r) => r.text.split(/\s+/).filter(Boolean).length === 40).length;
    return {
      database: kind,
      chats: CHATS,
      errors: errors.length === 0 ? 0 : `${errors.length} (${[...new Set(errors.map((e) => e.status))].join(', ')})`,
      'whole over SSE': wholeOverSse,
      'stored complete (40 words)': complete?.complete_words ?? 0,
      'TTFT p50 ms': median(results.map((r) => r.ttft)).toFixed(0),
      'TTFT p99 ms': percentile(
        results.map((r) => r.ttft),
        99,
      ).toFixed(0),
      'answer p50 ms': median(results.map((r) => r.total)).toFixed(0),
      'wall ms': wallMs.toFixed(0),
      'peak RSS MiB': (peakRss / 2 ** 20).toFixed(0),
    };
  } finally {
    await world.close();
  }
}

if (import.meta.main) {
  console.table([await benchConcurrentChats('pglite'), ...(process.env.TEST_DATABASE_URL ? [await benchConcurrentChats('postgres')] : [])]);
}
