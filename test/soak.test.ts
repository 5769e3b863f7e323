// test-runs-once: one process's memory and latency under mixed traffic; measured on the embedded database, the default (the same traffic's queries run on both databases in the route tests).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kindRows, runSoak, summaryRows } from '../bench/soak.ts';
import { judgeRssGrowth, type RssSample } from '../bench/soak-memory.ts';
import { testDbKind } from './database.ts';

/**
 * The short form of `npm run bench soak` (bench/soak.ts): the same code, for SOAK_TEST_S seconds (32; longer when a
 * loaded machine needs longer for the warm-up's requests) against a real `node src/server.ts` on the run's database
 * (PostgreSQL, or the embedded PGlite on disk, the default deployment): 40–55 s each.
 */
const DURATION_S = Number(process.env.SOAK_TEST_S ?? 32);
/**
 * With the soak's heap budget the server's RSS was flat after ~16 s of this traffic, ~900 requests (measured;
 * bench/README.md): warm-up lasts 12 s and 1,000 requests, so a slower machine warms up for longer.
 */
const WARM_UP_S = 12;
const WARM_UP_REQUESTS = 1000;

const series = (mib: (t: number) => number, seconds = 30): RssSample[] => Array.from({ length: seconds * 2 + 1 }, (_, i) => ({ atS: i / 2, mib: mib(i / 2) }));
const tolerance = { toleranceMiB: 24, toleranceFraction: 0.15 };

test('the growth check: a plateau with a GC sawtooth and spikes passes, a steady leak fails, warm-up is not judged', () => {
  // Warm-up from 150 to 300 MiB in the first third, then ±20 MiB of sawtooth and a few 80 MiB spikes.
  const plateau = series((t) => (t < 10 ? 150 + 15 * t : 300 + 20 * Math.sin(t * 3) + (Math.round(t * 2) % 17 === 0 ? 80 : 0)));
  assert.equal(judgeRssGrowth(plateau, tolerance).growing, false);
  // The same plateau plus 6 MiB/s: the medians, 10 s apart, differ by ~60 MiB, more than 15 % of ~330 MiB.
  const leaking = series((t) => (t < 10 ? 150 + 15 * t : 300 + 20 * Math.sin(t * 3) + 6 * (t - 10)));
  const verdict = judgeRssGrowth(leaking, tolerance);
  assert.equal(verdict.growing, true, JSON.stringify(verdict));
  assert.ok(verdict.slopeMiBPerMin > 200);
});

test(`mixed traffic against a spawned server (warm-up, then ${DURATION_S - WARM_UP_S} s judged): no errors, every answer stored complete, RSS not growing`, {
  timeout: (DURATION_S + 240) * 1000,
}, async () => {
  const report = await runSoak({
    kind: testDbKind,
    durationS: DURATION_S,
    warmUpS: WARM_UP_S,
    warmUpRequests: WARM_UP_REQUESTS,
    users: 5,
    admins: 1,
    thinkMs: 40,
    // After warm-up the two halves' medians differed by ~1 MiB on a loaded machine, on both databases; 10 MiB
    // (PGlite: 3 % of its ~460 MiB) leaves room and still catches a leak of ~1 MiB/s, 20 KB a request at this
    // traffic (bench/README.md has the experiment).
    tolerance: { toleranceMiB: 10, toleranceFraction: 0.03 },
    // The server's NODE_OPTIONS: the soak's heap budget unless set (a leak experiment adds a --import).
    nodeOptions: process.env.SOAK_NODE_OPTIONS,
  });
  const explain = `\n${JSON.stringify(summaryRows(report), null, 1)}\n${JSON.stringify(kindRows(report), null, 1)}`;
  assert.equal(report.tally.errorCount, 0, `request errors: ${report.tally.problems.join('\n')}${explain}`);
  for (const kind of ['POST /login (password)', 'GET /chat', 'GET /chat/:id', 'GET /settings', 'GET /admin/users', 'GET /admin/audit', 'GET /admin/stats']) {
    assert.ok((report.tally.latencyMs.get(kind)?.length ?? 0) > 0, `no ${kind} in the mix${explain}`);
  }
  assert.ok(report.answers.started >= 10, `only ${report.answers.started} answers streamed${explain}`);
  assert.deepEqual(report.answers.problems, [], explain);
  assert.equal(report.answers.storedComplete, report.answers.started);
  assert.equal(report.memory.growing, false, `RSS kept growing${explain}`);
  assert.deepEqual(report.failures, [], explain);
});
