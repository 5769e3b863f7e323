import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type RawBuilder, sql } from 'kysely';
import type { Db } from './database.ts';

/**
 * Catch-up jobs bring rows written before a migration up to date: the adopted answers re-rendered by our renderer
 * (src/chat/adopted-answers.ts), the usage rollups counted (migration 011). On a big adopted database they take
 * minutes, so they run after the server listens (docs/decisions/013-catch-up-after-listen.md), in batches that each
 * commit: a restart resumes where the last one stopped, and what is not caught up yet is handled on read meanwhile.
 * Several processes may run them at once: each job's batch takes its rows under a lock, so no batch is done twice.
 */
export interface CatchUpJob {
  /** What the log calls it: "re-rendering adopted answers". */
  name: string;
  /** One batch, in a transaction of its own. False: nothing is left that this process may take. */
  step(db: Db): Promise<boolean>;
  /** How far the job is, 0–100, or null when nothing is left (what /admin/stats shows). */
  percent(db: Db): Promise<number | null>;
}

/** What the runner logs with: pino's `info`/`error` (the app's logger) or the CLI's lines. */
export interface CatchUpLog {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A progress line at most this often: a million rows take minutes, and a line per batch would be thousands. */
export const CATCH_UP_LOG_INTERVAL_MS = 10_000;

export interface CatchUpRun {
  /** Resolves when every job is done, has failed (logged) or was stopped; never rejects. */
  finished: Promise<void>;
  /** Asks the jobs to stop after the batch in progress (which commits), and waits for that. */
  stop(): Promise<void>;
}

/** Runs the jobs one after the other, in the background. */
export function startCatchUp(db: Db, jobs: CatchUpJob[], log: CatchUpLog): CatchUpRun {
  let stopping = false;
  const finished = (async () => {
    for (const job of jobs) {
      if (stopping) return;
      await runJob(db, job, log, () => stopping);
    }
  })().catch((err: unknown) => log.error({ err }, 'catching up failed; it resumes at the next start'));
  return {
    finished,
    stop: async () => {
      stopping = true;
      await finished;
    },
  };
}

async function runJob(db: Db, job: CatchUpJob, log: CatchUpLog, stopping: () => boolean): Promise<void> {
  const started = performance.now();
  let lastLine = started;
  let batches = 0;
  let done = false;
  try {
    while (!stopping()) {
      if (!(await job.step(db))) {
        done = true;
        break;
      }
      batches++;
      const now = performance.now();
      // Nothing is logged when nothing was left: every start but the ones after an adoption or an upgrade.
      if (batches === 1 || now - lastLine >= CATCH_UP_LOG_INTERVAL_MS) {
        lastLine = now;
        const percent = await job.percent(db);
        log.info({ job: job.name, percent }, `catching up: ${job.name}, ${percent ?? 100} % done`);
      }
      // Requests waiting for the database go first (PGlite has one connection; the pool hands it out in order).
      await yieldToEventLoop();
    }
  } catch (err) {
    log.error({ err, job: job.name }, `catching up: ${job.name} failed; it resumes at the next start`);
    return;
  }
  if (batches === 0) return;
  const seconds = Math.round((performance.now() - started) / 1000);
  if (done) log.info({ job: job.name, seconds }, `catching up: ${job.name} finished in ${seconds} s`);
  else log.info({ job: job.name, percent: await job.percent(db) }, `catching up: ${job.name} stopped; it resumes at the next start`);
}

/**
 * Progress of a job counted in rows (chatbot_schema.catch_up, migration 018): `ndone` grows with each batch, in the
 * batch's transaction; `ntotal` is ndone plus what is left, counted when a process begins the job or finds nothing
 * left (rows deleted meanwhile, or rendered by another process, would otherwise leave it short of 100 %).
 */
export async function countCatchUpTotal(db: Db, job: string, left: RawBuilder<{ n: number }>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // The row is locked before the rows left are counted: a statement taking its snapshot after the lock sees the
    // batches of other processes either committed (in ndone, not left) or not (left, not in ndone), never both.
    await sql`SELECT 1 FROM chatbot_schema.catch_up WHERE txjob = ${job} FOR UPDATE`.execute(trx);
    const n = (await left.execute(trx)).rows[0]?.n ?? 0;
    await sql`UPDATE chatbot_schema.catch_up SET ntotal = ndone + ${n} WHERE txjob = ${job}`.execute(trx);
  });
}

/** Adds `rows` to the job's ndone (inside the batch's transaction, so a rolled-back batch counts nothing). */
export async function countCatchUpDone(trx: Db, job: string, rows: number): Promise<void> {
  await sql`UPDATE chatbot_schema.catch_up SET ndone = ndone + ${rows} WHERE txjob = ${job}`.execute(trx);
}

/** 0–100, or null when the job has nothing left (or has not been counted yet). */
export async function catchUpPercent(db: Db, job: string): Promise<number | null> {
  const r = await sql<{ ntotal: number | null; ndone: number }>`SELECT ntotal, ndone FROM chatbot_schema.catch_up WHERE txjob = ${job}`.execute(db);
  const row = r.rows[0];
  if (!row || row.ntotal === null || row.ndone >= row.ntotal) return null;
  return Math.floor((100 * row.ndone) / row.ntotal);
}

/** The jobs' names in chatbot_schema.catch_up (a page of another slice reads a job's progress by it). */
export const CATCH_UP_ADOPTED_ANSWERS = 'adopted-answers';
