import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../auth/guards.ts';
import type { SessionCompanion } from '../auth/session-plugin.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { holdInstanceLock, type InstanceLock, RECONNECT_DELAY_MS } from '../db/instance-lock.ts';
import { usageNotice } from '../groups/usage-limits.ts';
import { NotFoundError } from '../http/errors.ts';
import { pathId, pathIdOrNull } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { attachmentRoutes, listTurnsWithFiles } from './attachment-routes.ts';
import { chatApiRoutes } from './chat-api.ts';
import { chatPageData, chatPageFromJson } from './chat-queries.ts';
import { type ChatPageData, chatPage } from './chat-views.ts';
import { GenerationRegistry } from './generation.ts';
import { HEARTBEAT_INTERVAL_MS, markAllActiveResponsesInterrupted, markOrphanedResponsesInterrupted } from './response-store.ts';
import { searchRoutes } from './search-routes.ts';

/** How often each process looks for answers whose process died (a dead owner's are found at the next sweep). */
export const SWEEP_INTERVAL_MS = 5_000;
/**
 * A periodic sweep runs only once this process has held its own lock this long: its lock lost too means the database
 * (or the network to it) came back a moment ago, when the other live processes may not have taken theirs again yet
 * (they retry every RECONNECT_DELAY_MS) nor written a heartbeat since (HEARTBEAT_INTERVAL_MS). A process that
 * merely died is still found at the next sweep: the sweepers' own locks never broke.
 */
export const SWEEP_SETTLE_MS = HEARTBEAT_INTERVAL_MS + 2 * RECONNECT_DELAY_MS;

/** One periodic sweep: the answers of dead processes become `interrupted`, unless this process's lock is unsettled. */
export async function sweepOrphanedAnswers(db: Db, lock: InstanceLock): Promise<number | 'unsettled'> {
  if (lock.heldForMs() < SWEEP_SETTLE_MS) return 'unsettled';
  return markOrphanedResponsesInterrupted(db);
}

/** The chat slice: the page, the JSON/SSE API, and the lifecycle of the answers this process generates. */
export async function chatRoutes(app: FastifyInstance, opts: { db: Db; config: Config; answersMayBeActive?: boolean }): Promise<void> {
  const { db, config, answersMayBeActive = true } = opts;
  // Taken at onReady (on PostgreSQL: a connection of its own), before any answer can begin; `owner` is read then.
  let lock: InstanceLock = { owner: null, heldForMs: () => 0, close: async () => {} };
  const instance = {
    get owner() {
      return lock.owner;
    },
  };
  const generations = new GenerationRegistry(
    {
      db,
      log: app.log,
      idleTimeoutMs: config.LLM_TIMEOUT_S * 1000,
      maxAnswerChars: config.MAX_ANSWER_CHARS,
      maxAnswerMs: config.LLM_MAX_ANSWER_S * 1000,
      metrics: app.metrics,
      outage: app.databaseOutage,
    },
    instance,
  );

  // Answers a dead process left behind become `interrupted`: at start, then regularly (other processes may die too).
  // On PGlite only one process ever runs, so at start every active answer is such a one, and nobody else can die.
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = async (interrupt: (db: Db) => Promise<number | 'unsettled'>) => {
    try {
      const n = await interrupt(db);
      if (n === 'unsettled') return;
      app.databaseOutage.succeeded();
      if (n > 0) app.log.warn({ count: n }, 'marked answers of a stopped process as interrupted');
    } catch (err) {
      if (!app.databaseOutage.failed('sweep of orphaned answers', err)) app.log.error({ err }, 'the sweep for answers of stopped processes failed');
    }
  };
  app.addHook('onReady', async () => {
    lock = await holdInstanceLock(db, app.log, app.databaseOutage);
    if (lock.owner === null) return answersMayBeActive ? sweep(markAllActiveResponsesInterrupted) : undefined;
    if (answersMayBeActive) await sweep(markOrphanedResponsesInterrupted);
    // (The first sweep above is not held back: a process starting has no reason to think the database just restarted.)
    sweeper = setInterval(() => void sweep((d) => sweepOrphanedAnswers(d, lock)), SWEEP_INTERVAL_MS).unref();
  });
  // On close (SIGTERM/SIGINT in server.ts): requests arriving now get 503 from Fastify; running answers get
  // SHUTDOWN_GRACE_S to finish, the rest end `interrupted` and their streams get an `error` event and end, so the
  // server's close does not wait for them. The lock goes last: until then, no other process sweeps these answers.
  // Not awaited in preClose: Fastify gives those hooks pluginTimeout (10 s), less than a grace may be. The server's
  // close waits for the answers' streams, and onClose (no time limit) for the answers nobody listens to any more.
  let draining: Promise<void> | undefined;
  app.addHook('preClose', async () => {
    draining = generations.stopAll(config.SHUTDOWN_GRACE_S * 1000).catch((err) => app.log.error({ err }, 'could not stop the answers'));
  });
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    await draining;
    await generations.stopAll();
    await lock.close();
  });

  /** The page's data was read with the session (the routes' session companion); the conversation is read here. */
  async function renderChat(req: FastifyRequest, chatId: number | null): Promise<ChatPageData> {
    const { chats, models, preferredModelId, current, usage } = chatPageFromJson(req.sessionCompanion);
    if (chatId !== null && !current) throw new NotFoundError('This chat does not exist or is not yours.');
    const turns = current ? await listTurnsWithFiles(db, current.id) : [];
    const notice = usageNotice(usage, config.STATS_TIMEZONE);
    if (!current) return { chats, models, preferredModelId, current: null, maxPromptChars: config.MAX_PROMPT_CHARS, usageNotice: notice };
    return {
      chats,
      models,
      preferredModelId,
      maxPromptChars: config.MAX_PROMPT_CHARS,
      usageNotice: notice,
      current: {
        id: current.id,
        title: current.title ?? 'New chat',
        modelId: current.modelId,
        modelName: current.modelName,
        modelAvailable: current.modelAvailable,
        modelAllowed: current.modelAllowed,
        systemPrompt: current.systemPrompt,
        turns,
      },
    };
  }

  const page = {
    fluid: true,
    scripts: [assetUrl('chat')],
    styles: ['/static/hljs.css', '/static/chat.css', '/static/chat-prompts.css', '/static/chat-attachments.css', '/static/search.css'],
  };

  // The page data comes with the session check (one round trip for the page every user loads most).
  const chatListPage: SessionCompanion<[null]> = { build: chatPageData, args: () => [null] };
  const chatDetailPage: SessionCompanion<[number | null]> = { build: chatPageData, args: (req) => [pathIdOrNull(req.params)] };

  app.get('/chat', { config: { sessionCompanion: chatListPage } }, async (req, reply) => {
    requireUser(req);
    return reply.page({ ...page, title: 'Chat', body: chatPage(await renderChat(req, null)) });
  });

  app.get('/chat/:id', { config: { sessionCompanion: chatDetailPage } }, async (req, reply) => {
    requireUser(req);
    const data = await renderChat(req, pathId(req.params));
    return reply.page({ ...page, title: data.current?.title ?? 'Chat', body: chatPage(data) });
  });

  await app.register(chatApiRoutes, { db, config, generations });
  await app.register(attachmentRoutes, { db });
  await app.register(searchRoutes, { db });
}
