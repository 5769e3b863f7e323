import { sql } from 'kysely';
import type { OpenedDatabase } from '../src/db/database.ts';
import { spawnServer } from '../test/server-process.ts';
import { spawnFakeLlm } from './chat-world.ts';
import { type DbKind, markdownTable, median, percentile, type Row } from './lib.ts';
import { type GrowthTolerance, type GrowthVerdict, judgeRssGrowth, readRssMiB, sampleRss } from './soak-memory.ts';
import { runAdmin, runUser, type StartedAnswer, type TrafficContext } from './soak-traffic.ts';
import { Tally, Visitor } from './soak-visitor.ts';
import { createAccounts, placeFor, seeded } from './soak-world.ts';

/**
 * `npm run bench soak`: mixed traffic for a bounded time against one real app process (`node src/server.ts`, so
 * the RSS measured is the app's own), on PostgreSQL or the embedded database, with the fake model server in a
 * process of its own. Reports requests, errors and p50/p99 latency by kind, the answers stored complete (read from
 * the database afterwards: every answer started must be `complete` with exactly the text the model sent), the
 * server's RSS over the run and whether it kept growing (soak-memory.ts). Also the short form test/soak.test.ts runs.
 */
export interface SoakOptions {
  kind: DbKind;
  durationS: number;
  users: number;
  admins: number;
  thinkMs: number;
  tolerance: GrowthTolerance;
  /** Traffic before the RSS is judged (soak-memory.ts); a third of the run unless given. */
  warmUpS?: number;
  /**
   * Warm-up also lasts until this many requests are done (the heap settles after an amount of work, not of time,
   * so a slow, loaded machine warms up for longer); the judged time after it, durationS − warmUpS, stays the same.
   */
  warmUpRequests?: number;
  /** NODE_OPTIONS of the server process: HEAP_BUDGET unless told otherwise ('' for Node's defaults). */
  nodeOptions?: string;
  seed?: number;
}

export interface SoakReport {
  options: SoakOptions;
  tally: Tally;
  answers: { started: number; storedComplete: number; problems: string[] };
  rssAtReadyMiB: number;
  /** Seconds of traffic, and when the warm-up ended in them. */
  trafficS: number;
  warmUpEndS: number;
  memory: GrowthVerdict;
  /** Lines the server logged at level error or fatal, and how it exited on SIGTERM. */
  serverErrors: string[];
  exitCode: number | null;
  /** Why the soak failed; empty when it passed. */
  failures: string[];
}

/**
 * The server runs with a heap budget, as in a container with a memory limit. With Node's defaults V8 sizes its
 * heap lazily: under a moderate load the young generation doubles once after half a minute and the old generation
 * collects garbage only once it has grown for a minute or more, so a short run cannot tell that warm-up from a leak
 * (measured: 169 → 300 MiB in 30 s with the old space still climbing, flat at ~375 MiB after ~40 s of a heavier
 * 120 s run). With a budget the collector reaches its steady state within ~15 s (old space flat at ~42 MiB, RSS
 * ~190 MiB), so whatever still grows after that is held by the app; a leak also ends in an out-of-memory crash,
 * which the soak reports. SOAK_NODE_OPTIONS='' soaks with Node's defaults (then run 120 s or more).
 */
export const HEAP_BUDGET = '--max-old-space-size=192 --max-semi-space-size=16';
const RSS_SAMPLE_MS = 500;

/** Every answer the visitors saw start must be stored `complete` with the text the model sent, and no others exist. */
async function checkAnswers(opened: OpenedDatabase, started: StartedAnswer[]): Promise<SoakReport['answers']> {
  const { rows } = await sql<{ id: number; status: string; markdown: string | null }>`
    SELECT idresponse AS id, txstatus AS status, txmarkdown AS markdown FROM chatbot_schema.response`.execute(opened.db);
  const stored = new Map(rows.map((r) => [r.id, r]));
  const problems: string[] = [];
  let storedComplete = 0;
  for (const answer of started) {
    const row = stored.get(answer.responseId);
    if (!row) problems.push(`response ${answer.responseId}: not stored`);
    else if (row.status !== 'complete') problems.push(`response ${answer.responseId}: ${row.status}`);
    else if (row.markdown !== answer.expected)
      problems.push(`response ${answer.responseId}: ${row.markdown?.length ?? 0} of ${answer.expected.length} chars stored`);
    else storedComplete++;
  }
  const seen = new Set(started.map((a) => a.responseId));
  for (const row of rows) if (!seen.has(row.id)) problems.push(`response ${row.id}: ${row.status}, an answer no visitor saw start`);
  return { started: started.length, storedComplete, problems };
}

/**
 * Samples the server's RSS while the visitors run (they were started with `ctx.untilMs` open), ends the warm-up
 * once its time has passed and its requests are done, then lets the judged time run and waits for the visitors.
 */
async function driveTraffic(pid: number, options: SoakOptions, ctx: TrafficContext, visitors: Array<Promise<void>>) {
  const warmUpS = options.warmUpS ?? options.durationS / 3;
  const rss = sampleRss(pid, RSS_SAMPLE_MS);
  const started = performance.now();
  let warmUpEndS = 0;
  const watch = setInterval(() => {
    const elapsedMs = performance.now() - started;
    const workDone = ctx.tally.requestCount >= (options.warmUpRequests ?? 0);
    // A server too slow to do the warm-up's requests a minute late is judged anyway (and its errors reported).
    if (elapsedMs < warmUpS * 1000 || (!workDone && elapsedMs < (warmUpS + 60) * 1000)) return;
    clearInterval(watch);
    warmUpEndS = elapsedMs / 1000;
    ctx.untilMs = performance.now() + (options.durationS - warmUpS) * 1000;
  }, 50);
  try {
    await Promise.all(visitors);
  } finally {
    clearInterval(watch);
    rss.stop();
  }
  return { samples: rss.samples, warmUpEndS, trafficS: (performance.now() - started) / 1000 };
}

/** pino's JSON lines at level 50 (error) or 60 (fatal). */
const errorLines = (output: string) => output.split('\n').filter((line) => /"level":(50|60)\b/.test(line));

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const llm = await spawnFakeLlm();
  const place = await placeFor(options.kind);
  try {
    const server = await spawnServer({
      ...place.env,
      NODE_ENV: 'production',
      APP_SECRET: 'soak-secret-that-is-long-enough-0123456789',
      OPENAI_BASE_URL: llm.baseUrl,
      OPENAI_MODELS: 'fake-echo',
      NODE_OPTIONS: options.nodeOptions ?? HEAP_BUDGET,
    });
    const pid = server.child.pid as number;
    try {
      const rssAtReadyMiB = readRssMiB(pid);
      const { users, admins, userIds, modelId } = await createAccounts(server.baseUrl, options);
      const tally = new Tally();
      const ctx: TrafficContext = {
        tally,
        untilMs: Number.POSITIVE_INFINITY,
        thinkMs: options.thinkMs,
        modelId,
        answers: [],
        userIds,
        random: seeded(options.seed ?? 1),
      };
      const traffic = await driveTraffic(pid, options, ctx, [
        ...users.map((a) => runUser(new Visitor(server.baseUrl, tally), a, ctx)),
        ...admins.map((a) => runAdmin(new Visitor(server.baseUrl, tally), a, ctx)),
      ]);
      const memory = judgeRssGrowth(traffic.samples, options.tolerance, traffic.warmUpEndS);
      // PostgreSQL: read while the server still runs, so shutdown (which marks running answers interrupted) cannot
      // hide anything. PGlite: the server holds the data directory, so it is read after the server has exited.
      let answers = options.kind === 'postgres' ? await checkAnswers(await place.open(), ctx.answers) : undefined;
      server.child.kill('SIGTERM');
      const exitCode = await server.exited;
      if (!answers) {
        const opened = await place.open();
        answers = await checkAnswers(opened, ctx.answers).finally(() => opened.close());
      }
      const serverErrors = errorLines(server.output());
      const failures = [
        ...(tally.errorCount > 0 ? [`${tally.errorCount} request errors: ${tally.problems.slice(0, 5).join(' | ')}`] : []),
        ...(answers.problems.length > 0 ? [`${answers.problems.length} answers not stored complete: ${answers.problems.slice(0, 5).join(' | ')}`] : []),
        ...(answers.started === 0 ? ['no answer was streamed'] : []),
        ...(memory.growing
          ? [
              `RSS kept growing: median ${memory.middleMedianMiB.toFixed(0)} → ${memory.lastMedianMiB.toFixed(0)} MiB (+${memory.growthMiB.toFixed(1)}, allowed ${memory.allowedMiB.toFixed(1)})`,
            ]
          : []),
        ...(serverErrors.length > 0 ? [`the server logged ${serverErrors.length} errors: ${serverErrors.slice(0, 3).join(' | ')}`] : []),
        ...(exitCode !== 0 ? [`the server exited with ${exitCode} on SIGTERM`] : []),
      ];
      return { options, tally, answers, rssAtReadyMiB, trafficS: traffic.trafficS, warmUpEndS: traffic.warmUpEndS, memory, serverErrors, exitCode, failures };
    } finally {
      if (server.child.exitCode === null) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
    }
  } finally {
    await place.cleanUp();
    await llm.close();
  }
}

/** Requests, errors and latency by kind, busiest first, and the total. */
export function kindRows(report: SoakReport): Row[] {
  const { tally } = report;
  const rows = [...tally.latencyMs].map(([kind, ms]) => ({
    kind,
    requests: ms.length,
    errors: tally.errors.get(kind) ?? 0,
    'p50 ms': median(ms).toFixed(1),
    'p99 ms': percentile(ms, 99).toFixed(1),
  }));
  rows.sort((a, b) => b.requests - a.requests);
  const requests = tally.requestCount;
  return [...rows, { kind: `all requests (${(requests / report.trafficS).toFixed(0)}/s)`, requests, errors: tally.errorCount, 'p50 ms': '', 'p99 ms': '' }];
}

export function summaryRows(report: SoakReport): Row[] {
  const { options, memory, answers } = report;
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  return [
    {
      measure: 'run',
      value: `${options.kind}, ${report.trafficS.toFixed(0)} s, ${options.users} users + ${options.admins} admins, ~${options.thinkMs} ms between actions, server NODE_OPTIONS “${options.nodeOptions ?? HEAP_BUDGET}”`,
    },
    { measure: 'answers started / stored complete', value: `${answers.started} / ${answers.storedComplete}` },
    {
      measure: 'server RSS at ready / traffic start / end / peak',
      value: [report.rssAtReadyMiB, memory.startMiB, memory.endMiB, memory.peakMiB].map(mib).join(' / '),
    },
    {
      measure: `RSS median after ${report.warmUpEndS.toFixed(0)} s of warm-up, first half → second half`,
      value: `${mib(memory.middleMedianMiB)} → ${mib(memory.lastMedianMiB)} (${memory.growthMiB >= 0 ? '+' : ''}${memory.growthMiB.toFixed(1)} MiB, allowed ${memory.allowedMiB.toFixed(1)})`,
    },
    { measure: 'RSS at each tenth of the run', value: memory.tenthsMiB.map((v) => v.toFixed(0)).join(', ') },
    { measure: 'RSS slope after warm-up', value: `${memory.slopeMiBPerMin.toFixed(1)} MiB/min` },
    { measure: 'server errors logged / exit on SIGTERM', value: `${report.serverErrors.length} / ${report.exitCode}` },
    { measure: 'verdict', value: report.failures.length === 0 ? 'pass' : `FAIL: ${report.failures.join('; ')}` },
  ];
}

/** The bench entry: env-configurable; prints the summary, returns the per-kind table, and fails the process on a failed soak. */
export async function benchSoak(): Promise<Row[]> {
  const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const kinds = (process.env.SOAK_DB ?? (process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite')).split(',') as DbKind[];
  const rows: Row[] = [];
  for (const kind of kinds) {
    const report = await runSoak({
      kind,
      durationS: env('SOAK_DURATION_S', 60),
      users: env('SOAK_USERS', 8),
      admins: env('SOAK_ADMINS', 2),
      thinkMs: env('SOAK_THINK_MS', 20),
      tolerance: { toleranceMiB: env('SOAK_RSS_TOLERANCE_MIB', 10), toleranceFraction: env('SOAK_RSS_TOLERANCE_FRACTION', 0.05) },
      warmUpS: process.env.SOAK_WARM_UP_S ? Number(process.env.SOAK_WARM_UP_S) : undefined,
      warmUpRequests: env('SOAK_WARM_UP_REQUESTS', 0),
      nodeOptions: process.env.SOAK_NODE_OPTIONS,
      seed: env('SOAK_SEED', 1),
    });
    console.log(`### Soak on ${kind}\n\n${markdownTable(summaryRows(report))}\n`);
    if (report.failures.length > 0) {
      console.error(`Soak on ${kind} failed:\n- ${report.failures.join('\n- ')}`);
      process.exitCode = 1;
    }
    rows.push(...kindRows(report).map((r) => ({ database: kind, ...r })));
  }
  return rows;
}
