import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { BadRequestError, ConflictError, NotFoundError, TooManyRequestsError } from '../http/errors.ts';
import { dbId, parseJsonOrThrow, pathId } from '../http/validation.ts';
import {
  ApiKeyUnreadableError,
  createApiKeyBox,
  findModelSummary,
  type ModelConnectionRecord,
  type ModelConnectionRow,
  toModelConnection,
} from '../llm/llm-queries.ts';
import type { ChatTurn, ModelConnection } from '../llm/model-client.ts';
import {
  ACTIVE_STATUSES,
  type AnswerContext,
  createChat,
  deleteChat,
  findAnswerContext,
  findOwnedChat,
  findResponseInChat,
  insertPromptAndPlaceholder,
  listTurns,
  renameChat,
  TooManyGenerationsError,
  type TurnRecord,
} from './chat-queries.ts';
import { openEventStream } from './event-stream.ts';
import type { GenerationRegistry } from './generation.ts';
import { requestStop } from './response-store.ts';

const newChatBody = z.strictObject({ llm: dbId });
const renameBody = z.strictObject({ title: z.string().trim().min(1, 'A title cannot be empty').max(200) });
const emptyBody = z.strictObject({}).optional();

/** The conversation as the model sees it: each earlier prompt with the text of its answer, then `prompt`. */
function historyWith(earlier: AnswerContext['turns'], prompt: string): ChatTurn[] {
  const history: ChatTurn[] = [];
  for (const turn of earlier) {
    history.push({ role: 'user', content: turn.prompt });
    if (turn.answer && turn.status !== 'pending') history.push({ role: 'assistant', content: turn.answer });
  }
  history.push({ role: 'user', content: prompt });
  return history;
}

export function serializeTurns(turns: TurnRecord[]) {
  return turns.map((t) => ({
    idmessage: t.messageId,
    content: t.prompt,
    created_at: t.createdAt,
    response: t.response && {
      idresponse: t.response.id,
      status: t.response.status,
      markdown: t.response.markdown,
      html: t.response.html,
      error: t.response.error,
      tinf_start: t.response.startedAt,
      tinf_end: t.response.endedAt,
    },
  }));
}

export async function chatApiRoutes(app: FastifyInstance, opts: { db: Db; config: Config; generations: GenerationRegistry }): Promise<void> {
  const { db, config, generations } = opts;
  const keys = createApiKeyBox(config.APP_SECRET);

  function usableConnection(row: ModelConnectionRow): ModelConnection {
    let conn: ModelConnectionRecord;
    try {
      conn = toModelConnection(keys, row);
    } catch (err) {
      if (err instanceof ApiKeyUnreadableError)
        throw new ConflictError('This model cannot be reached right now. Ask an administrator to check its connection.');
      throw err;
    }
    if (!conn.enabled || !conn.baseUrl) throw new ConflictError('This model is not available any more. Start a new chat with another model.');
    return conn;
  }

  async function answerContextOr404(userId: number, chatId: number): Promise<AnswerContext> {
    const context = await findAnswerContext(db, userId, chatId);
    if (!context) throw new NotFoundError('Chat not found');
    return context;
  }

  async function ownedChatOr404(userId: number, chatId: number) {
    const chat = await findOwnedChat(db, userId, chatId);
    if (!chat) throw new NotFoundError('Chat not found');
    return chat;
  }

  /**
   * Starts the answer and streams it to this client for as long as it listens. The model is called while the
   * prompt and placeholder are being stored (see GenerationRegistry.start); the transactional limit check
   * decides, and a refused request is answered 429 before any event is sent.
   */
  async function generateAndStream(
    reply: FastifyReply,
    input: { userId: number; context: AnswerContext; prompt: string; earlier: AnswerContext['turns']; messageId?: number },
  ) {
    const limitError = () =>
      new TooManyRequestsError(`You already have ${config.MAX_CONCURRENT_GENERATIONS} answers being generated. Wait for one to finish.`, 5);
    const { chat } = input.context;
    const connection = usableConnection(input.context.model);
    if (input.context.activeAnswers >= config.MAX_CONCURRENT_GENERATIONS) throw limitError();
    const stored = insertPromptAndPlaceholder(db, {
      userId: input.userId,
      chatId: chat.id,
      modelId: chat.modelId,
      prompt: input.prompt,
      messageId: input.messageId,
      maxActive: config.MAX_CONCURRENT_GENERATIONS,
    });
    const generation = generations.start(stored, connection, historyWith(input.earlier, input.prompt));
    let ids: { messageId: number; responseId: number };
    try {
      ids = await stored;
    } catch (err) {
      throw err instanceof TooManyGenerationsError ? limitError() : err;
    }
    const events = openEventStream(reply);
    const done = { idmessage: ids.messageId, idresponse: ids.responseId };
    events.send('start', done);
    const unsubscribe = generation.subscribe((e) => {
      if (e.type === 'token') return events.send('token', { text: e.text });
      if (e.type === 'done') events.send('done', { ...done, status: e.status, html: e.html });
      else events.send('error', { message: e.message, idresponse: ids.responseId });
      events.end();
    });
    events.onClose(unsubscribe);
    return reply;
  }

  app.post('/api/chats', async (req, reply) => {
    const user = requireUser(req);
    const { llm } = parseJsonOrThrow(newChatBody, req.body);
    const model = await findModelSummary(db, llm);
    if (!model?.enabled || !model.baseUrl) throw new ConflictError('This model is not available. Pick another one.');
    const id = await createChat(db, user.userId, llm);
    return reply.code(201).send({ id });
  });

  app.get('/api/chats/:id', async (req) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    const model = await findModelSummary(db, chat.modelId);
    return {
      id: chat.id,
      title: chat.title ?? 'New chat',
      llm: { id: chat.modelId, name: model?.name ?? '' },
      turns: serializeTurns(await listTurns(db, chat.id)),
    };
  });

  app.patch('/api/chats/:id', async (req) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    const { title } = parseJsonOrThrow(renameBody, req.body);
    await renameChat(db, chat.id, title);
    return { id: chat.id, title };
  });

  app.delete('/api/chats/:id', async (req, reply) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    for (const turn of await listTurns(db, chat.id)) if (turn.response) generations.get(turn.response.id)?.stop('user');
    await deleteChat(db, chat.id);
    return reply.code(204).send();
  });

  app.post('/api/chats/:id/messages', async (req, reply) => {
    const user = requireUser(req);
    const context = await answerContextOr404(user.userId, pathId(req.params));
    const schema = z.strictObject({
      content: z
        .string({ message: 'content is required' })
        .max(config.MAX_PROMPT_CHARS, `The message is too long: at most ${config.MAX_PROMPT_CHARS} characters.`)
        .refine((v) => v.trim().length > 0, 'The message is empty.'),
    });
    const { content } = parseJsonOrThrow(schema, req.body);
    return generateAndStream(reply, { userId: user.userId, context, prompt: content, earlier: context.turns });
  });

  app.post('/api/chats/:id/regenerate', async (req, reply) => {
    const user = requireUser(req);
    const context = await answerContextOr404(user.userId, pathId(req.params));
    parseJsonOrThrow(emptyBody, req.body);
    const last = context.turns.at(-1);
    if (!last) throw new BadRequestError('There is no message to answer again.');
    if (context.turns.some((t) => t.status && ACTIVE_STATUSES.includes(t.status))) {
      throw new ConflictError('An answer is still being generated in this chat.');
    }
    return generateAndStream(reply, { userId: user.userId, context, prompt: last.prompt, earlier: context.turns.slice(0, -1), messageId: last.messageId });
  });

  app.post('/api/chats/:id/responses/:idresponse/stop', async (req) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    const responseId = pathId(req.params, 'idresponse');
    parseJsonOrThrow(emptyBody, req.body);
    const response = await findResponseInChat(db, chat.id, responseId);
    if (!response) throw new NotFoundError('Answer not found');
    if (ACTIVE_STATUSES.includes(response.status)) {
      await requestStop(db, response.id); // reaches the answer even when another process generates it
      generations.get(response.id)?.stop('user');
    }
    return { ok: true };
  });
}
