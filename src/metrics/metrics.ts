import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../db/database.ts';

/**
 * What this process counts for GET /metrics. A ground-floor module (it imports only prom-client and a type): the
 * slices that record (chat, auth) call it; the metrics slice (metrics-routes.ts) serves it.
 *
 * One registry per app, never prom-client's global one: tests build many apps in one process, and each must count
 * only its own requests. Label values are bounded sets (route patterns, status codes, the models an admin
 * configured, fixed method and kind names); prom-client escapes them (backslash, newline and double quote), so an
 * admin-written model name cannot break the text format.
 */
export class AppMetrics {
  readonly registry = new Registry();
  readonly #registers = [this.registry];

  readonly httpRequests = new Counter({
    name: 'parley_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern (unmatched: no route) and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: this.#registers,
  });

  readonly httpDuration = new Histogram({
    name: 'parley_http_request_duration_seconds',
    help: 'Time from request to the last byte of the answer, by method and route pattern (a streamed answer: its whole stream).',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: this.#registers,
  });

  readonly answers = new Counter({
    name: 'parley_answers_total',
    help: 'Answers this process generated, by model name and final status (complete, stopped, error, interrupted).',
    labelNames: ['model', 'status'] as const,
    registers: this.#registers,
  });

  // Buckets for LLMs: a local model on a loaded GPU takes seconds before its first token, a hosted one well under one.
  readonly timeToFirstToken = new Histogram({
    name: 'parley_answer_time_to_first_token_seconds',
    help: 'From sending the request to the model server to the first text of its answer, by model name.',
    labelNames: ['model'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
    registers: this.#registers,
  });

  // Up to LLM_MAX_ANSWER_S (600 s by default), the longest an answer may take.
  readonly inferenceTime = new Histogram({
    name: 'parley_answer_inference_seconds',
    help: 'From sending the request to the model server to its last token, answers that ended complete only, by model name.',
    labelNames: ['model'] as const,
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: this.#registers,
  });

  readonly answersInFlight = new Gauge({
    name: 'parley_answers_in_flight',
    help: 'Answers this process is generating right now.',
    registers: this.#registers,
  });

  readonly signInFailures = new Counter({
    name: 'parley_sign_in_failures_total',
    help: 'Refused sign-in steps, by method: password (wrong e-mail or password, deactivated), totp and recovery (second step), google (a refused Google sign-in).',
    labelNames: ['method'] as const,
    registers: this.#registers,
  });

  readonly throttleHits = new Counter({
    name: 'parley_throttle_hits_total',
    help: 'Attempts refused because a throttle had locked them, by kind of throttle.',
    labelNames: ['kind'] as const,
    registers: this.#registers,
  });

  constructor(opts: { poolStats?: () => PoolStats | undefined; processMetrics?: boolean } = {}) {
    // Known label values start at 0, so a first failure shows as an increase (rate() needs two samples).
    for (const method of SIGN_IN_FAILURE_METHODS) this.signInFailures.inc({ method }, 0);
    for (const kind of THROTTLE_KINDS) this.throttleHits.inc({ kind }, 0);
    const poolStats = opts.poolStats;
    if (poolStats) {
      // Read when scraped: the pool knows its counts at every moment, nothing needs updating on each query.
      new Gauge({
        name: 'parley_db_pool_connections',
        help: 'Database connections this process holds, by state: in_use (lent to a query or transaction) or idle.',
        labelNames: ['state'] as const,
        registers: this.#registers,
        collect() {
          const s = poolStats();
          if (!s) return;
          this.set({ state: 'in_use' }, s.total - s.idle);
          this.set({ state: 'idle' }, s.idle);
        },
      });
      new Gauge({
        name: 'parley_db_pool_waiting',
        help: 'Queries waiting for a database connection because all of them are in use.',
        registers: this.#registers,
        collect() {
          const s = poolStats();
          if (s) this.set(s.waiting);
        },
      });
      new Gauge({
        name: 'parley_db_pool_max_connections',
        help: 'The most connections the pool opens (DB_POOL_SIZE on PostgreSQL; 1 for the embedded database).',
        registers: this.#registers,
        collect() {
          const s = poolStats();
          if (s) this.set(s.max);
        },
      });
    }
    // Only for an app that serves /metrics: the event-loop and GC monitors they start run for the process's life.
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  signInFailed(method: SignInFailureMethod): void {
    this.signInFailures.inc({ method });
  }

  throttled(kind: ThrottleKind): void {
    this.throttleHits.inc({ kind });
  }
}

export const SIGN_IN_FAILURE_METHODS = ['password', 'totp', 'recovery', 'google', 'passkey'] as const;
export type SignInFailureMethod = (typeof SIGN_IN_FAILURE_METHODS)[number];

/** Each throttle rule's name (src/auth/throttle.ts and totp-queries.ts give each rule one). */
export const THROTTLE_KINDS = ['password_account', 'password_address', 'registration_address', 'second_factor', 'api_key_address'] as const;
export type ThrottleKind = (typeof THROTTLE_KINDS)[number];
