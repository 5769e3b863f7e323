import autocannon from 'autocannon';
import { type DbKind, type Row, registerViaForm, startBenchApp } from './lib.ts';

/**
 * Requests per second for an authenticated page: GET /chat with a session cookie, so every request validates the
 * session against the database (session + user + role in one query) and renders the layout.
 * The load generator runs in a worker thread, so it does not share the app's event loop.
 */
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = 10;

export async function benchPageThroughput(kind: DbKind): Promise<Row> {
  const bench = await startBenchApp(kind);
  try {
    const user = await registerViaForm(bench.baseUrl, { username: 'Bench', email: 'bench@example.com', password: 'bench password 123' });
    const url = `${bench.baseUrl}/chat`;
    // A short warm-up (JIT, pg pool connections), not reported.
    await autocannon({ url, connections: CONNECTIONS, duration: 1, headers: { cookie: user.cookie } });
    const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, workers: 1, headers: { cookie: user.cookie } });
    if (result['2xx'] === 0 || result.non2xx > 0 || result.errors > 0) {
      throw new Error(`GET /chat failed under load: ${result.non2xx} non-2xx, ${result.errors} errors`);
    }
    return {
      database: kind === 'pglite' ? 'PGlite (embedded)' : 'PostgreSQL',
      page: 'GET /chat (signed in)',
      connections: CONNECTIONS,
      'duration s': DURATION_S,
      'requests/s': Math.round(result.requests.average),
      'p50 ms': result.latency.p50,
      'p99 ms': result.latency.p99,
      requests: result.requests.total,
    };
  } finally {
    await bench.close();
  }
}
