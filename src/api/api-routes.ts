import type { FastifyInstance } from 'fastify';
import { Agent } from 'undici';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { interruptAbandonedApiCalls } from './api-call-queries.ts';
import { ApiCallJournal } from './call-journal.ts';
import { apiKeyRoutes } from './key-routes.ts';
import { ApiCallRegistry } from './upstream-relay.ts';
import { v1Routes } from './v1-routes.ts';

/** An API call this much older than LLM_MAX_ANSWER_S is from a process that died; swept this often. */
const ABANDONED_CALL_MARGIN_S = 60;
const ABANDONED_CALL_SWEEP_MS = 60_000;

/** The API slice (API_KEYS): the key pages and JSON routes, /v1, and the lifecycle of the calls this process relays. */
export async function apiRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  await app.register(apiKeyRoutes, { db, config });
  const registry = new ApiCallRegistry();
  const journal = new ApiCallJournal(db, app.log);
  // Keep-alive connections to the upstreams, one pool per origin; closed once no call is left to use them.
  const upstream = new Agent();
  // As chat answers (decision record 002): running calls get SHUTDOWN_GRACE_S, then end `interrupted`. Not awaited in
  // preClose (Fastify bounds those hooks by pluginTimeout); the server's close waits for the streams themselves.
  let draining: Promise<void> = Promise.resolve();
  app.addHook('preClose', async () => {
    draining = registry.stopAll(config.SHUTDOWN_GRACE_S * 1000).catch((err) => app.log.error({ err }, 'could not stop the API calls'));
  });
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    await draining;
    await registry.stopAll(0);
    await upstream.close();
    // The calls still queued are written before the pool closes (server.ts closes the database after the app).
    await journal.close();
  });
  // Calls a dead process left 'running' (a crash, a kill -9) end 'interrupted' once older than any live call can be.
  const sweep = () =>
    interruptAbandonedApiCalls(db, config.LLM_MAX_ANSWER_S + ABANDONED_CALL_MARGIN_S)
      .then((n) => n > 0 && app.log.warn({ count: n }, 'marked API calls of a stopped process as interrupted'))
      .catch((err) => app.log.error({ err }, 'the sweep for API calls of stopped processes failed'));
  let sweeper: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await sweep();
    sweeper = setInterval(() => void sweep(), ABANDONED_CALL_SWEEP_MS).unref();
  });
  await app.register(v1Routes, { prefix: '/v1', db, config, registry, journal, upstream });
}
