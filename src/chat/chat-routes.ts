import type { FastifyInstance } from 'fastify';
import { requireUser } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { pathId } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { findModelSummary, listEnabledModels } from '../llm/llm-queries.ts';
import { chatApiRoutes } from './chat-api.ts';
import { findOwnedChat, listChats, listTurns } from './chat-queries.ts';
import { type ChatPageData, chatPage } from './chat-views.ts';
import { GenerationRegistry } from './generation.ts';
import { markStaleResponsesInterrupted, STALE_AFTER_S } from './response-store.ts';

const SWEEP_INTERVAL_MS = (STALE_AFTER_S / 2) * 1000;

/** The chat slice: the page, the JSON/SSE API, and the lifecycle of the answers this process generates. */
export async function chatRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const generations = new GenerationRegistry({
    db,
    log: app.log,
    idleTimeoutMs: config.LLM_TIMEOUT_S * 1000,
    maxAnswerChars: config.MAX_ANSWER_CHARS,
    maxAnswerMs: config.LLM_MAX_ANSWER_S * 1000,
  });

  // Answers a crashed process left behind become `interrupted`: at start, then regularly (other processes may die too).
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = async () => {
    try {
      const n = await markStaleResponsesInterrupted(db);
      if (n > 0) app.log.warn({ count: n }, 'marked answers of a stopped process as interrupted');
    } catch (err) {
      app.log.error({ err }, 'stale answer sweep failed');
    }
  };
  app.addHook('onReady', async () => {
    await sweep();
    sweeper = setInterval(() => void sweep(), SWEEP_INTERVAL_MS).unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    await generations.stopAll();
  });

  async function renderChat(userId: number, chatId: number | null): Promise<ChatPageData> {
    const [chats, models] = await Promise.all([listChats(db, userId), listEnabledModels(db)]);
    if (chatId === null) return { chats, models, current: null, maxPromptChars: config.MAX_PROMPT_CHARS };
    const chat = await findOwnedChat(db, userId, chatId);
    if (!chat) throw new NotFoundError('This chat does not exist or is not yours.');
    const model = await findModelSummary(db, chat.modelId);
    const turns = await listTurns(db, chat.id);
    return {
      chats,
      models,
      maxPromptChars: config.MAX_PROMPT_CHARS,
      current: {
        id: chat.id,
        title: chat.title ?? 'New chat',
        modelId: chat.modelId,
        modelName: model?.name ?? 'unknown model',
        modelAvailable: Boolean(model?.enabled && model.baseUrl),
        turns,
      },
    };
  }

  const page = { fluid: true, scripts: [assetUrl('chat')], styles: ['/static/hljs.css', '/static/chat.css'] };

  app.get('/chat', async (req, reply) => {
    const user = requireUser(req);
    return reply.page({ ...page, title: 'Chat', body: chatPage(await renderChat(user.userId, null)) });
  });

  app.get('/chat/:id', async (req, reply) => {
    const user = requireUser(req);
    const data = await renderChat(user.userId, pathId(req.params));
    return reply.page({ ...page, title: data.current?.title ?? 'Chat', body: chatPage(data) });
  });

  await app.register(chatApiRoutes, { db, config, generations });
}
