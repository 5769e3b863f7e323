import { spawn } from 'node:child_process';
import { benchAdminUsers } from './admin-users.ts';
import { benchAnswerFlush } from './answer-flush.ts';
import { benchApiConcurrent, benchApiThroughput, benchApiTtft } from './api.ts';
import { benchApiAdmission } from './api-admission.ts';
import { benchCatchUp } from './catch-up.ts';
import { benchConcurrentChats } from './concurrent-chats.ts';
import { benchGroups } from './groups.ts';
import { type DbKind, databaseKinds, machine, markdownTable, type Row } from './lib.ts';
import { benchPageThroughput } from './page-throughput.ts';
import { benchSearch } from './search.ts';
import { benchSoak } from './soak.ts';
import { benchStartup } from './startup.ts';
import { benchStats } from './stats.ts';
import { benchTtft } from './ttft.ts';

/**
 * `npm run bench [-- name…]`: runs the benchmarks (all, or those named) and prints markdown tables.
 * A benchmark is a name, a title and a function returning table rows: add a new one as one entry below.
 */
interface Bench {
  name: string;
  title: string;
  run(): Promise<Row[]>;
}

/** Runs a benchmark once per database: PGlite, and PostgreSQL when TEST_DATABASE_URL is set. */
function perDatabase(bench: (kind: DbKind) => Promise<Row | Row[]>): () => Promise<Row[]> {
  return async () => {
    const rows: Row[] = [];
    for (const kind of databaseKinds()) rows.push(...[await bench(kind)].flat());
    return rows;
  };
}

const benches: Bench[] = [
  { name: 'startup', title: 'Start to /readyz (embedded database)', run: benchStartup },
  { name: 'page', title: 'Authenticated page throughput', run: perDatabase(benchPageThroughput) },
  { name: 'ttft', title: 'Time to first token: the app’s overhead over the model server', run: perDatabase(benchTtft) },
  { name: 'chats', title: 'Concurrent streaming chats', run: perDatabase(benchConcurrentChats) },
  { name: 'flush', title: 'Saving the partial text of a 100,000-character answer', run: perDatabase(benchAnswerFlush) },
  { name: 'admin', title: 'GET /admin/users at 100,000 users: server time per page and search', run: perDatabase(benchAdminUsers) },
  { name: 'stats', title: '/admin/stats on a million messages: daily rollups against the seed’s raw SQL', run: perDatabase(benchStats) },
  {
    name: 'catch-up',
    title: 'First start on a big Flask-era database: ready, then catching up in the background',
    run: perDatabase(benchCatchUp),
  },
  { name: 'groups', title: 'A group of 10,000 members, and what the limit check adds to each prompt', run: perDatabase(benchGroups) },
  { name: 'api-ttft', title: 'Time to first token added by /v1/chat/completions over the upstream', run: perDatabase(benchApiTtft) },
  { name: 'api-concurrent', title: '1,000 concurrent streamed API calls (PostgreSQL): one process, two processes', run: benchApiConcurrent },
  {
    name: 'api-admission',
    title: '1,000 API calls of one key at once, straight on the database (admission and end, pool of 20; PostgreSQL)',
    run: benchApiAdmission,
  },
  { name: 'api-throughput', title: 'Non-stream /v1 throughput against a bare node:http fetch proxy', run: perDatabase(benchApiThroughput) },
  {
    name: 'search',
    title: 'Search of one’s chats (GET /api/chats?q=): a user with 10,000 chats among 1,000,000 prompts',
    run: perDatabase(benchSearch),
  },
  { name: 'soak', title: 'Soak: mixed traffic against one app process (requests by kind)', run: benchSoak },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`Unknown benchmark: ${unknown.join(', ')}. Known: ${benches.map((b) => b.name).join(', ')}`);
  process.exit(1);
}
const selected = benches.filter((b) => wanted.length === 0 || wanted.includes(b.name));

async function runHere(bench: Bench): Promise<void> {
  const started = Date.now();
  const rows = await bench.run();
  console.log(`## ${bench.title}\n\n${markdownTable(rows)}\n\n(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

/** Each benchmark in a process of its own, so one's garbage, warm JIT or leftover sockets do not colour the next (RSS above all). */
function runInChild(bench: Bench): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, bench.name], { stdio: 'inherit', env: { ...process.env, BENCH_CHILD: '1' } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`benchmark ${bench.name} exited with ${code}`))));
  });
}

if (!process.env.BENCH_CHILD) {
  const m = machine();
  console.log(`# Parley benchmarks\n\nMachine: ${m.cpu} × ${m.cores} cores, Node.js ${m.node}, ${m.platform}, ${new Date().toISOString().slice(0, 10)}\n`);
}
for (const bench of selected) {
  if (selected.length === 1) await runHere(bench);
  else await runInChild(bench);
}
