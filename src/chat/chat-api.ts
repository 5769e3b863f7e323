import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { limitMessage, retryAfterSeconds } from '../groups/usage-limits.ts';
import { bidiProblem } from '../http/display-name.ts';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, TooManyRequestsError } from '../http/errors.ts';
import { dbId, parseJsonOrThrow, pathId } from '../http/validation.ts';
import { ApiKeyUnreadableError, createApiKeyBox, findModelForUser, findModelSummary, toModelConnection } from '../llm/llm-queries.ts';
import type { ChatTurn, ModelConnection } from '../llm/model-client.ts';
import { systemPromptSchema } from '../llm/system-prompt.ts';
import { beginAnswerWithFiles, conversationWithFiles, type TurnWithFiles } from './attachment-answers.ts';
import { type CheckedAttachment, checkAttachments } from './attachment-checks.ts';
import { type ModelFile, promptChars, userContent } from './attachment-prompt.ts';
import type { AttachmentSummary } from './attachment-queries.ts';
import { listTurnsWithFiles } from './attachment-routes.ts';
import { acceptFileUploads, attachmentsJson, promptBodyLimitBytes, readPromptWithFiles } from './attachment-upload.ts';
import { attachmentUrl } from './attachment-views.ts';
import {
  ACTIVE_STATUSES,
  createChat,
  deleteChat,
  findOwnedChat,
  findResponseInChat,
  listTurns,
  renameChat,
  switchChatModel,
  type TurnRecord,
} from './chat-queries.ts';
import { openEventStream } from './event-stream.ts';
import type { GenerationRegistry } from './generation.ts';
import { editPrompt } from './prompt-edit.ts';
import { finalizeResponse, requestStop } from './response-store.ts';
import { setChatSystemPrompt, withSystemPrompts } from './system-prompts.ts';

const newChatBody = z.strictObject({ llm: dbId });
// Titles are shown to admins in the statistics too: no bidi controls there (display-name.ts).
const chatChangesBody = z
  .strictObject({
    title: z
      .string()
      .trim()
      .min(1, 'A title cannot be empty')
      .max(200)
      .refine((v) => bidiProblem(v, 'The title') === undefined, 'The title contains invisible text-direction characters (such as U+202E).')
      .optional(),
    llm: dbId.optional(),
    system_prompt: systemPromptSchema('The system prompt').optional(),
  })
  .refine(
    (b) => b.title !== undefined || b.llm !== undefined || b.system_prompt !== undefined,
    'Nothing to change: send a title, a model (llm) or a system prompt (system_prompt).',
  );
const emptyBody = z.strictObject({}).optional();
// Regenerate may ask another model for that one answer; the chat keeps its model.
const regenerateBody = z.strictObject({ llm: dbId.optional() }).optional();
const MODEL_FORBIDDEN = 'You may not use this model: an administrator made it available to some groups only. Pick another model.';

/**
 * The conversation as the model sees it: earlier prompts (with their files) and the text of their answers, then
 * `prompt` with its files. Only the newest whole turns that fit `maxChars` (MAX_HISTORY_CHARS) together with the
 * prompt are sent, so a long chat goes on working instead of being refused by the model's context window with HTTP 400
 * on every later prompt. The prompt itself is always sent. Files weigh what promptChars says (an image a fixed
 * IMAGE_CHARS); images go only to a `vision` model, others read a note in their place (attachment-prompt.ts).
 */
function historyWith(earlier: TurnWithFiles[], prompt: string, maxChars: number, files: { prompt: ModelFile[]; vision: boolean }): ChatTurn[] {
  const { vision } = files;
  const kept: ChatTurn[][] = [];
  let chars = promptChars(prompt, files.prompt, vision);
  for (const turn of [...earlier].reverse()) {
    const answer = turn.answer && turn.status !== 'pending' ? turn.answer : null;
    chars += promptChars(turn.prompt, turn.files, vision) + (answer?.length ?? 0);
    if (chars > maxChars) break; // older turns are dropped whole, oldest first
    const messages: ChatTurn[] = [{ role: 'user', content: userContent(turn.prompt, turn.files, vision) }];
    if (answer) messages.push({ role: 'assistant', content: answer });
    kept.push(messages);
  }
  return [...kept.reverse().flat(), { role: 'user', content: userContent(prompt, files.prompt, vision) }];
}

export function serializeTurns(turns: Array<TurnRecord & { attachments?: AttachmentSummary[] }>, chatId: number) {
  return turns.map((t) => ({
    idmessage: t.messageId,
    content: t.prompt,
    attachments: (t.attachments ?? []).map((a) => ({
      id: a.id,
      name: a.name,
      kind: a.kind,
      media_type: a.mediaType,
      bytes: a.bytes,
      url: attachmentUrl(chatId, a.id),
    })),
    created_at: t.createdAt,
    response: t.response && {
      idresponse: t.response.id,
      status: t.response.status,
      markdown: t.response.markdown,
      html: t.response.html,
      error: t.response.error,
      tinf_start: t.response.startedAt,
      tinf_end: t.response.endedAt,
      llm: { id: t.response.modelId, name: t.response.modelName },
    },
  }));
}

export async function chatApiRoutes(app: FastifyInstance, opts: { db: Db; config: Config; generations: GenerationRegistry }): Promise<void> {
  const { db, config, generations } = opts;
  const keys = createApiKeyBox(config.APP_SECRET);
  // Built once: it depends only on configuration, and this is the time-to-first-token path.
  const promptBody = z.strictObject({
    content: z
      .string({ message: 'content is required' })
      .max(config.MAX_PROMPT_CHARS, `The message is too long: at most ${config.MAX_PROMPT_CHARS} characters.`)
      .refine((v) => v.trim().length > 0, 'The message is empty.'),
    attachments: attachmentsJson.optional(),
  });
  await acceptFileUploads(app, config.MAX_PROMPT_CHARS);

  async function ownedChatOr404(userId: number, chatId: number) {
    const chat = await findOwnedChat(db, userId, chatId);
    if (!chat) throw new NotFoundError('Chat not found');
    return chat;
  }

  /**
   * Asks the model (a new prompt, or the last one again when `prompt` is undefined) and streams the answer to this
   * client for as long as it listens. All checks and inserts are one database round trip (beginAnswer); the
   * answer then runs on its own (see GenerationRegistry).
   */
  async function answerAndStream(
    reply: FastifyReply,
    { files = [], ...input }: { userId: number; chatId: number; prompt?: string; modelId?: number; editOf?: number; files?: CheckedAttachment[] },
  ): Promise<FastifyReply> {
    const common = { maxActive: config.MAX_CONCURRENT_GENERATIONS, owner: generations.owner };
    // An edit replaces a prompt with text only: the edited prompt's files leave the chat with it (decision record 020).
    const begun =
      input.editOf !== undefined && input.prompt !== undefined
        ? await editPrompt(db, { ...input, ...common, messageId: input.editOf, prompt: input.prompt })
        : await beginAnswerWithFiles(db, { ...input, ...common }, files);
    switch (begun.outcome) {
      case 'not_found':
        throw new NotFoundError('Chat not found');
      case 'message_not_found':
        throw new NotFoundError('Message not found in this chat');
      case 'forbidden':
        throw new ForbiddenError(MODEL_FORBIDDEN);
      case 'over_limit':
        throw new TooManyRequestsError(limitMessage(begun.refusal, config.STATS_TIMEZONE), retryAfterSeconds(begun.refusal));
      case 'model_unavailable':
        throw new ConflictError('This model is not available any more. Pick another model for this chat.');
      case 'no_message':
        throw new BadRequestError('There is no message to answer again.');
      case 'busy':
        throw new ConflictError('An answer is still being generated in this chat.');
      case 'limit':
        throw new TooManyRequestsError(`You already have ${config.MAX_CONCURRENT_GENERATIONS} answers being generated. Wait for one to finish.`, 5);
    }
    const ids = { idmessage: begun.messageId, idresponse: begun.responseId };
    let connection: ModelConnection;
    try {
      connection = toModelConnection(keys, begun.model);
    } catch (err) {
      if (!(err instanceof ApiKeyUnreadableError)) throw err;
      const message = 'This model cannot be reached right now. Ask an administrator to check its connection.';
      await finalizeResponse(db, begun.responseId, { status: 'error', markdown: '', html: '', error: message, promptTokens: null, completionTokens: null });
      throw new ConflictError(message);
    }
    // The files are read for the budget the system prompts leave, the one historyWith trims to.
    const conversation = await withSystemPrompts(begun.systemPrompts, config.MAX_HISTORY_CHARS, async (maxChars) => {
      const { earlier, promptFiles, vision } = await conversationWithFiles(db, begun, { chatId: input.chatId, modelId: begun.model.idllm, maxChars });
      return historyWith(earlier, begun.prompt, maxChars, { prompt: promptFiles, vision });
    });
    const generation = generations.start(begun.responseId, connection, conversation);
    const events = openEventStream(reply);
    events.send('start', { ...ids, llm: { id: begun.model.idllm, name: begun.model.txshortname } });
    const unsubscribe = generation.subscribe((e) => {
      if (e.type === 'token') return events.send('token', { text: e.text });
      if (e.type === 'done') events.send('done', { ...ids, status: e.status, html: e.html });
      else events.send('error', { message: e.message, idresponse: ids.idresponse });
      events.end();
    });
    events.onClose(unsubscribe);
    return reply;
  }

  app.post('/api/chats', async (req, reply) => {
    const user = requireUser(req);
    const { llm } = parseJsonOrThrow(newChatBody, req.body);
    const model = await findModelForUser(db, llm, user.userId);
    if (!model?.usable) throw new ConflictError('This model is not available. Pick another one.');
    if (!model.allowed) throw new ForbiddenError(MODEL_FORBIDDEN);
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
      system_prompt: chat.systemPrompt,
      turns: serializeTurns(await listTurnsWithFiles(db, chat.id), chat.id),
    };
  });

  app.patch('/api/chats/:id', async (req) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    const { title, llm, system_prompt } = parseJsonOrThrow(chatChangesBody, req.body);
    // Allowed while an answer is being written: that answer keeps the model it began with (response.idllm).
    if (llm !== undefined) {
      const model = await findModelForUser(db, llm, user.userId);
      if (model?.usable && !model.allowed) throw new ForbiddenError(MODEL_FORBIDDEN);
      // The update checks again in its own statement: a model disabled in between is still refused.
      if (!(await switchChatModel(db, user.userId, chat.id, llm))) throw new ConflictError('This model is not available. Pick another one.');
    }
    if (title !== undefined) await renameChat(db, chat.id, title);
    // Allowed while an answer is being written too: it applies from the next answer on.
    if (system_prompt !== undefined) await setChatSystemPrompt(db, chat.id, system_prompt);
    return { id: chat.id, ...(title !== undefined && { title }), ...(llm !== undefined && { llm }), ...(system_prompt !== undefined && { system_prompt }) };
  });

  app.delete('/api/chats/:id', async (req, reply) => {
    const user = requireUser(req);
    const chat = await ownedChatOr404(user.userId, pathId(req.params));
    for (const turn of await listTurns(db, chat.id)) if (turn.response) generations.get(turn.response.id)?.stop('user');
    await deleteChat(db, chat.id);
    return reply.code(204).send();
  });

  app.post('/api/chats/:id/messages', { bodyLimit: promptBodyLimitBytes(config.MAX_PROMPT_CHARS) }, async (req, reply) => {
    const user = requireUser(req);
    const chatId = pathId(req.params);
    const { content, files } = await readPromptWithFiles(req, promptBody);
    return answerAndStream(reply, { userId: user.userId, chatId, prompt: content, files: checkAttachments(files) });
  });

  // Edit and resend: the prompt and everything after it leave the chat, the new text is answered as a new prompt.
  app.post('/api/chats/:id/messages/:idmessage/edit', async (req, reply) => {
    const user = requireUser(req);
    const chatId = pathId(req.params);
    const messageId = pathId(req.params, 'idmessage');
    const { content } = parseJsonOrThrow(promptBody, req.body);
    return answerAndStream(reply, { userId: user.userId, chatId, prompt: content, editOf: messageId });
  });

  app.post('/api/chats/:id/regenerate', async (req, reply) => {
    const user = requireUser(req);
    const chatId = pathId(req.params);
    const body = parseJsonOrThrow(regenerateBody, req.body);
    return answerAndStream(reply, { userId: user.userId, chatId, modelId: body?.llm });
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
