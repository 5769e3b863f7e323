import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pino from 'pino';
import { admitCompletion } from '../src/api/api-call-queries.ts';
import { generateApiKey } from '../src/api/api-key-queries.ts';
import { ApiCallJournal } from '../src/api/call-journal.ts';
import { openDatabase } from '../src/db/database.ts';
import { openScratchPostgres } from '../test/database.ts';
import { median, percentile, type Row } from './lib.ts';

/**
 * The database's share of api-concurrent, without HTTP or streams: `API_CONCURRENT` (1,000) API calls of one key at
 * once, each its admission (one read) and its row, start and end, handed to the journal that writes rows in batches
 * (src/api/call-journal.ts, flushed before the clock stops), straight on a pool of 20 connections as the app's. On a
 * shared machine the HTTP benchmark is mostly the CPU of 1,000 streams; this one isolates what the rows and their
 * locks cost: wall time, each call's time (pool wait included), errors, and whether every call is
 * counted once.
 */
const CALLS = Number(process.env.API_CONCURRENT ?? 1000);

export async function benchApiAdmission(): Promise<Row[]> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) return [{ skipped: 'needs TEST_DATABASE_URL (PostgreSQL)' }];
  const scratch = await openScratchPostgres(url, 'parley_bench');
  const opened = await openDatabase({ databaseUrl: scratch.url, poolSize: 20 });
  try {
    const db = opened.db;
    const { key: _key, hash, prefix } = generateApiKey();
    await sql`
      INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('bench', 'http://127.0.0.1:9/v1', 'bench');
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('bench', 'bench@example.com', '');`.execute(db);
    await sql`
      INSERT INTO chatbot_schema.api_key (idappuser, txname, txprefix, txhash)
      SELECT idappuser, 'bench', ${prefix}, ${hash} FROM chatbot_schema.app_user`.execute(db);
    const caller = { keyHash: hash, throttleKey: 'bench-address' };
    const journal = new ApiCallJournal(db, pino({ level: 'warn' }));
    const rows: Row[] = [];
    for (const round of ['cold day (no rollup row yet)', 'warm (rows exist)']) {
      const errors: string[] = [];
      const times: number[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CALLS }, async () => {
          const t0 = performance.now();
          try {
            const admission = await admitCompletion(db, caller, 'bench', 10);
            if (admission.kind !== 'admitted') throw new Error(admission.kind);
            // As the route does: the journal writes the call's row, start and end, in batches.
            journal.begin(admission);
            journal.end(admission, {
              status: 'complete',
              elapsedMs: 8,
              firstTokenMs: 5,
              promptTokens: 10,
              completionTokens: 20,
              estimated: false,
              error: null,
            });
            times.push(performance.now() - t0);
          } catch (err) {
            errors.push((err as Error).message.slice(0, 40));
          }
        }),
      );
      await journal.flush();
      const wallMs = performance.now() - started;
      const counted = await sql<{ calls: number; prompts: string; answers: string; slots: number }>`
        SELECT (SELECT count(*)::int FROM chatbot_schema.api_call) AS calls,
          (SELECT sum(nprompts) FROM chatbot_schema.usage_day_model WHERE txsource = 'api')::text AS prompts,
          (SELECT sum(nresponses) FROM chatbot_schema.usage_day_model WHERE txsource = 'api')::text AS answers,
          (SELECT count(*)::int FROM chatbot_schema.usage_day_model WHERE txsource = 'api') AS slots`.execute(db);
      const c = counted.rows[0];
      rows.push({
        round,
        calls: CALLS,
        errors: errors.length === 0 ? 0 : `${errors.length} (${[...new Set(errors)].join('; ')})`,
        'api_call rows': c?.calls ?? 0,
        'rollup prompts / answers': `${c?.prompts} / ${c?.answers}`,
        'day × model rows': c?.slots ?? 0,
        'call p50 ms': times.length ? median(times).toFixed(0) : '-',
        'call p99 ms': times.length ? percentile(times, 99).toFixed(0) : '-',
        'wall ms': wallMs.toFixed(0),
        load: (loadavg()[0] ?? 0).toFixed(1),
      });
    }
    return rows;
  } finally {
    await opened.close();
    await scratch.close();
  }
}
