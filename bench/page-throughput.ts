import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import autocannon, { type Result } from 'autocannon';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Db } from '../src/db/database.ts';
import { type BenchApp, type DbKind, median, type Row, registerViaForm, startBenchApp } from './lib.ts';
import { fillChatsOf, fillPageWorld, type PageWorldSize, worldMessages } from './page-world.ts';

/**
 * Requests per second for an authenticated page, against a floor: GET /chat with a session cookie (every request
 * validates the session, the account's is_active and its roles against the database, loads the page's data and
 * renders the layout), and, in the same run on the same database with the same connections, Node's bare `http`
 * server doing one pooled query (the session row by its hash) and sending the very bytes the app sent. The ratio
 * app/bare is what the app's framework, checks and extra round trips cost; both are measured in alternating rounds
 * so a noisy neighbour slows both. The load generator runs in a worker thread, off the servers' event loop.
 */
const ROUND_S = Number(process.env.BENCH_DURATION_S ?? 5);
const ROUNDS = Number(process.env.BENCH_PAGE_ROUNDS ?? 3);
const CONNECTIONS = 50;
/**
 * About a million messages on PostgreSQL (2,500 accounts × 20 chats × 20 prompts, each answered); a tenth of that
 * on PGlite, which holds it in memory. The benchmark's user has 20 chats in the sidebar like everyone.
 */
const SIZES: Record<DbKind, PageWorldSize> = {
  postgres: { users: Number(process.env.BENCH_PAGE_USERS ?? 2500), chatsPerUser: 20, messagesPerChat: 20 },
  pglite: { users: Number(process.env.BENCH_PAGE_USERS_PGLITE ?? 250), chatsPerUser: 20, messagesPerChat: 20 },
};

const SESSION_SQL = 'SELECT idappuser FROM chatbot_schema.session WHERE idsession = $1';

/** The floor: parse the cookie, one query on a pool as large as the app's, the app's own status, headers and body. */
function startBareServer(pool: pg.Pool, page: { headers: IncomingHttpHeaders; body: Buffer }): Promise<{ url: string; server: Server }> {
  const headers = Object.fromEntries(Object.entries(page.headers).filter(([k]) => !['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(k)));
  const server = createServer((req, res) => {
    const token = /(?:^|;\s*)parley_session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';
    pool.query(SESSION_SQL, [createHash('sha256').update(token).digest('hex')]).then(
      (r) => {
        if (r.rows.length === 0) res.writeHead(403).end();
        else res.writeHead(200, headers).end(page.body);
      },
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/chat`, server });
    }),
  );
}

/** CPU seconds a thread or process has used so far (utime + stime of /proc/…/stat), or 0 if it is gone. */
function cpuSeconds(statPath: string): number {
  try {
    const fields = readFileSync(statPath, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU used by the server: its main thread (not the load generator's worker) plus, when PostgreSQL runs on this
 * machine, the backends of the benchmark's database. Unlike requests/s this hardly moves when neighbours load
 * the machine, so it is reported beside it.
 */
export function cpuMeter(kind: DbKind, db: Db): () => Promise<() => Promise<{ server: number; database: number }>> {
  // PGlite runs on the main thread (its "backend pid" is not a process of this machine).
  const backends = async () => {
    if (kind === 'pglite') return new Map<number, number>();
    const { rows } = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(db);
    return new Map(rows.map((r) => [r.pid, cpuSeconds(`/proc/${r.pid}/stat`)]));
  };
  const main = () => cpuSeconds(`/proc/self/task/${process.pid}/stat`);
  return async () => {
    const before = await backends();
    const mainBefore = main();
    return async () => {
      const used = main() - mainBefore;
      let database = 0;
      for (const [pid, cpu] of await backends()) database += cpu - (before.get(pid) ?? 0);
      return { server: used, database };
    };
  };
}

interface Measured {
  result: Result;
  /** CPU ms per request of the server's thread and of the database's backends (0 on PGlite: it runs in the thread). */
  serverMs: number;
  databaseMs: number;
}

async function load(url: string, cookie: string, durationS: number, meter?: ReturnType<typeof cpuMeter>): Promise<Measured> {
  const stop = await meter?.();
  const result = await autocannon({ url, connections: CONNECTIONS, duration: durationS, workers: 1, headers: { cookie } });
  const cpu = (await stop?.()) ?? { server: 0, database: 0 };
  if (result['2xx'] === 0 || result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url} failed under load: ${result.non2xx} non-2xx, ${result.errors} errors`);
  }
  const perRequest = (seconds: number) => (seconds * 1000) / result.requests.total;
  return { result, serverMs: perRequest(cpu.server), databaseMs: perRequest(cpu.database) };
}

async function buildWorld(bench: BenchApp, size: PageWorldSize) {
  const started = Date.now();
  await fillPageWorld(bench.database.db, size);
  const user = await registerViaForm(bench.baseUrl, { username: 'Bench', email: 'bench@example.com', password: 'bench password 123' });
  const { id } = await bench.database.db
    .selectFrom('chatbot_schema.app_user')
    .select('idappuser as id')
    .where('txemail', '=', 'bench@example.com')
    .executeTakeFirstOrThrow();
  await fillChatsOf(bench.database.db, size, id);
  return { user, buildS: (Date.now() - started) / 1000 };
}

export async function benchPageThroughput(kind: DbKind): Promise<Row> {
  const size = SIZES[kind];
  const bench = await startBenchApp(kind, {}, { level: 'info', file: '/dev/null' });
  let bare: { url: string; server: Server } | undefined;
  let pool: pg.Pool | undefined;
  try {
    const { user, buildS } = await buildWorld(bench, size);
    const appUrl = `${bench.baseUrl}/chat`;
    const sample = await fetch(appUrl, { headers: { cookie: user.cookie } });
    const page = { headers: Object.fromEntries(sample.headers) as IncomingHttpHeaders, body: Buffer.from(await sample.arrayBuffer()) };
    if (sample.status !== 200 || !page.body.includes('A chat about topic 1<')) throw new Error(`GET /chat answered ${sample.status} without the user's chats`);
    pool = bench.database.newPool(bench.config.DB_POOL_SIZE);
    bare = await startBareServer(pool, page);

    // Warm-up (JIT, every pooled connection, the database's caches), not reported.
    await load(appUrl, user.cookie, 2);
    await load(bare.url, user.cookie, 2);
    const meter = cpuMeter(kind, bench.database.db);
    const app: Measured[] = [];
    const floor: Measured[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      app.push(await load(appUrl, user.cookie, ROUND_S, meter));
      floor.push(await load(bare.url, user.cookie, ROUND_S, meter));
    }
    const rps = (runs: Measured[]) => median(runs.map((r) => r.result.requests.average));
    const cpu = (runs: Measured[]) => median(runs.map((r) => r.serverMs + r.databaseMs));
    const split = (runs: Measured[]) => `${median(runs.map((r) => r.serverMs)).toFixed(2)} + ${median(runs.map((r) => r.databaseMs)).toFixed(2)}`;
    const latency = (runs: Measured[]) => `${median(runs.map((r) => r.result.latency.p50))} / ${median(runs.map((r) => r.result.latency.p99))}`;
    const each = (runs: Measured[]) => runs.map((r) => Math.round(r.result.requests.average)).join(', ');
    return {
      database: kind === 'pglite' ? 'PGlite (embedded, in memory)' : 'PostgreSQL',
      messages: worldMessages(size).toLocaleString('en'),
      'page KiB': (page.body.length / 1024).toFixed(1),
      connections: CONNECTIONS,
      rounds: `${ROUNDS} × ${ROUND_S} s`,
      'app req/s': Math.round(rps(app)),
      'bare req/s': Math.round(rps(floor)),
      'app/bare': (rps(app) / rps(floor)).toFixed(2),
      'CPU ms/req app, bare': `${cpu(app).toFixed(2)}, ${cpu(floor).toFixed(2)}`,
      'CPU bare/app': (cpu(floor) / cpu(app)).toFixed(2),
      'CPU ms/req server + db, app': split(app),
      'CPU ms/req server + db, bare': split(floor),
      'p50 / p99 ms app': latency(app),
      'p50 / p99 ms bare': latency(floor),
      'req/s each round app': each(app),
      'req/s each round bare': each(floor),
      'world built s': buildS.toFixed(1),
    };
  } finally {
    bare?.server.closeAllConnections();
    await new Promise((resolve) => (bare ? bare.server.close(resolve) : resolve(undefined)));
    await pool?.end();
    await bench.close();
  }
}
