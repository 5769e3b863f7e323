import { type Expression, type RawBuilder, sql } from 'kysely';
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/postgres';
import type { Db } from '../db/database.ts';
import type { ResponseStatus } from '../db/schema.ts';
import {
  type LimitRefusal,
  type Remaining,
  refusalFrom,
  remainingFrom,
  selectUsageStatus,
  type UsageStatus,
  usageStatusFromJson,
} from '../groups/usage-limits.ts';
import { withoutBidiControls } from '../http/display-name.ts';
import { type ModelConnectionRow, selectEnabledModels, selectPreferredModelId, userMayUse } from '../llm/llm-queries.ts';
import { renderAdoptedAnswer } from './markdown.ts';
import type { SystemPrompts } from './system-prompts.ts';

export const THINKING_PLACEHOLDER = '🧠 Thinking...';
export const TITLE_MAX_CHARS = 60;
export const ACTIVE_STATUSES: ResponseStatus[] = ['pending', 'streaming'];

export interface ChatRecord {
  id: number;
  userId: number;
  modelId: number;
  title: string | null;
  /** The owner's instructions for this chat (migration 026); null: none. */
  systemPrompt: string | null;
}

/** The chat only if it belongs to this user: every chat route goes through here, so another user's chat is a 404. */
export async function findOwnedChat(db: Db, userId: number, chatId: number): Promise<ChatRecord | undefined> {
  return db
    .selectFrom('chatbot_schema.chat')
    .select(['idchat as id', 'idappuser as userId', 'idllm as modelId', 'txtitle as title', 'system_prompt as systemPrompt'])
    .where('idchat', '=', chatId)
    .where('idappuser', '=', userId)
    .executeTakeFirst();
}

export interface ChatListRow {
  id: number;
  title: string;
  updatedAt: Date;
  imported: boolean;
}

export interface ChatPageRows {
  /** The user's chats, newest first (at most 500). */
  chats: ChatListRow[];
  /** What the model picker offers (listEnabledModels). */
  models: Array<{ id: number; name: string }>;
  /** The model a new chat starts with (selectPreferredModelId); null when the picker is empty. */
  preferredModelId: number | null;
  /** The chat asked for, only if it is this user's, with its model as it is now; null for /chat or another's chat. */
  current: (ChatRecord & { modelName: string; modelAvailable: boolean; modelAllowed: boolean }) | null;
  /** The user's limits and what is used of them (the composer's notice). */
  usage: UsageStatus;
}

/**
 * Everything the chat page shows but the conversation, as ONE SQL expression (a JSON object of four subqueries):
 * a page costs the server and the database mostly per statement, not per row. `userId` is an expression, so the
 * session check reads it in its own statement (the chat routes' session companion, see session-plugin.ts); for
 * /chat, `chatId` is null and `current` comes back null.
 */
export function chatPageData(db: Db, userId: Expression<number>, chatId: number | null): Expression<unknown> {
  return sql`json_build_object(
    'chats', ${jsonArrayFrom(
      db
        .selectFrom('chatbot_schema.chat')
        .select(['idchat as id', 'txtitle as title', 'dtupdated as updatedAt', 'is_imported as imported'])
        .where('idappuser', '=', userId)
        .orderBy('dtupdated', 'desc')
        .orderBy('idchat', 'desc')
        .limit(500),
    )},
    'models', ${jsonArrayFrom(selectEnabledModels(db, userId))},
    'preferredModelId', (${selectPreferredModelId(db, userId)}),
    'usage', ${selectUsageStatus(userId)},
    'current', ${jsonObjectFrom(
      db
        .selectFrom('chatbot_schema.chat as c')
        .innerJoin('chatbot_schema.llm as l', 'l.idllm', 'c.idllm')
        .select([
          'c.idchat as id',
          'c.idappuser as userId',
          'c.idllm as modelId',
          'c.txtitle as title',
          'c.system_prompt as systemPrompt',
          'l.txshortname as modelName',
          sql<boolean>`l.is_enabled AND l.txbase_url IS NOT NULL`.as('modelAvailable'),
          userMayUse(userId, 'l.idllm').as('modelAllowed'),
        ])
        .where('c.idchat', '=', sql<number>`${chatId}::int`)
        .where('c.idappuser', '=', userId),
    )})`;
}

interface ChatPageJson {
  chats: Array<{ id: number; title: string | null; updatedAt: string; imported: boolean }>;
  models: Array<{ id: number; name: string }>;
  preferredModelId: number | null;
  current: ChatPageRows['current'];
  usage: unknown;
}

/** The rows of chatPageData, typed (JSON carries timestamps as ISO strings, whatever the types say). */
export function chatPageFromJson(json: unknown): ChatPageRows {
  if (typeof json !== 'object' || json === null) throw new Error('the chat page data was not read with the session');
  const page = json as ChatPageJson;
  return {
    chats: page.chats.map((c) => ({ id: c.id, title: c.title ?? 'New chat', updatedAt: new Date(c.updatedAt), imported: c.imported })),
    models: page.models,
    preferredModelId: page.preferredModelId ?? null,
    current: page.current ?? null,
    usage: usageStatusFromJson(page.usage),
  };
}

export async function createChat(db: Db, userId: number, modelId: number): Promise<number> {
  const row = await db.insertInto('chatbot_schema.chat').values({ idappuser: userId, idllm: modelId }).returning('idchat').executeTakeFirstOrThrow();
  return row.idchat;
}

export async function renameChat(db: Db, chatId: number, title: string): Promise<void> {
  await db.updateTable('chatbot_schema.chat').set({ txtitle: title }).where('idchat', '=', chatId).execute();
}

/**
 * Points the chat at another model for its later answers, in one statement that also checks the model is usable
 * (enabled, with a base URL) and allowed to the user (migration 020's may_use_model), so a model disabled at the same moment is never switched to. Answers already written,
 * and one being written, keep their own `response.idllm`. False: the model cannot be used.
 */
export async function switchChatModel(db: Db, userId: number, chatId: number, modelId: number): Promise<boolean> {
  const result = await db
    .updateTable('chatbot_schema.chat')
    .set({ idllm: modelId })
    .where('idchat', '=', chatId)
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('chatbot_schema.llm')
          .select('idllm')
          .where('idllm', '=', modelId)
          .where('is_enabled', '=', true)
          .where('txbase_url', 'is not', null)
          .where(userMayUse(userId, 'idllm')),
      ),
    )
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Deletes the chat with its messages and responses. The chat's row is locked first, in the order begin_answer takes
 * its locks (chat, then a response referencing a message): the other order deadlocked with an answer beginning.
 */
export async function deleteChat(db: Db, chatId: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.selectFrom('chatbot_schema.chat').select('idchat').where('idchat', '=', chatId).forUpdate().execute();
    await trx.deleteFrom('chatbot_schema.response').where('idchat', '=', chatId).execute();
    await trx.deleteFrom('chatbot_schema.message').where('idchat', '=', chatId).execute();
    await trx.deleteFrom('chatbot_schema.chat').where('idchat', '=', chatId).execute();
  });
}

export interface ResponseRecord {
  id: number;
  status: ResponseStatus;
  markdown: string;
  /** Always HTML Parley rendered (see listTurns), so views may insert it as is. */
  html: string;
  error: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  /** The model that wrote this answer (a chat's model can change between answers); '' if it was deleted since. */
  modelId: number;
  modelName: string;
}

export interface TurnRecord {
  messageId: number;
  prompt: string;
  createdAt: Date;
  response: ResponseRecord | null;
}

/** The conversation in order; each prompt with its latest answer (a regenerated answer replaces the older ones). */
export async function listTurns(db: Db, chatId: number): Promise<TurnRecord[]> {
  const rows = await db
    .selectFrom('chatbot_schema.message as m')
    .leftJoin(
      (eb) =>
        eb
          .selectFrom('chatbot_schema.response')
          .distinctOn('idmessage')
          .select(['idmessage', 'idresponse', 'idllm', 'txstatus', 'txmarkdown', 'txcontent', 'is_html_ours', 'txerror', 'tinf_start', 'tinf_end'])
          .where('idchat', '=', chatId)
          .orderBy('idmessage')
          .orderBy('idresponse', 'desc')
          .as('r'),
      (join) => join.onRef('r.idmessage', '=', 'm.idmessage'),
    )
    .leftJoin('chatbot_schema.llm as l', 'l.idllm', 'r.idllm')
    .select([
      'r.idllm',
      'l.txshortname',
      'm.idmessage as messageId',
      'm.txmessage as prompt',
      'm.dtcreated as createdAt',
      'r.idresponse',
      'r.txstatus',
      'r.txmarkdown',
      'r.txcontent',
      'r.is_html_ours',
      'r.txerror',
      'r.tinf_start',
      'r.tinf_end',
    ])
    .where('m.idchat', '=', chatId)
    .orderBy('m.idmessage')
    .execute();
  return rows.map((r) => ({
    messageId: r.messageId,
    prompt: r.prompt,
    createdAt: r.createdAt,
    response:
      r.idresponse === null
        ? null
        : {
            id: r.idresponse,
            status: (r.txstatus ?? 'complete') as ResponseStatus,
            markdown: r.txmarkdown ?? '',
            // HTML we did not render (a prototype row the re-rendering of migration 007 has not reached yet) is
            // never sent: its markdown is rendered here instead, for the page and the API alike.
            html: r.is_html_ours ? (r.txcontent ?? '') : renderAdoptedAnswer(r.txmarkdown, r.txcontent),
            error: r.txerror,
            startedAt: r.tinf_start,
            endedAt: r.tinf_end,
            modelId: r.idllm ?? 0,
            modelName: r.txshortname ?? '',
          },
  }));
}

export interface EarlierTurn {
  prompt: string;
  answer: string | null;
  status: ResponseStatus | null;
}

export type BeginAnswerResult =
  | { outcome: 'not_found' | 'forbidden' | 'model_unavailable' | 'no_message' | 'busy' | 'limit' | 'message_not_found' }
  | { outcome: 'over_limit'; refusal: LimitRefusal }
  | {
      outcome: 'ok';
      messageId: number;
      responseId: number;
      prompt: string;
      history: EarlierTurn[];
      model: ModelConnectionRow;
      remaining: Remaining;
      systemPrompts: SystemPrompts;
    };

/**
 * One round trip before the model is asked (migration 006, chatbot_schema.begin_answer): ownership, one answer per
 * chat at a time (`busy`), model, limit, the conversation so far, and the prompt plus the seed's "🧠 Thinking..."
 * placeholder with tinf_start = now(). `prompt` undefined regenerates the answer to the chat's last prompt.
 * `owner` is this process's instance id (see src/db/instance-lock.ts), recorded on the answer; null where none is held.
 * `modelId` asks another model than the chat's for this one answer (migration 023); undefined: the chat's model.
 */
export async function beginAnswer(
  db: Db,
  input: { userId: number; chatId: number; prompt?: string; maxActive: number; owner?: number | null; modelId?: number },
): Promise<BeginAnswerResult> {
  return readBegunAnswer(
    db,
    input.chatId,
    sql`chatbot_schema.begin_answer(
      ${input.userId}, ${input.chatId}, ${input.prompt ?? null}::text, ${input.prompt === undefined ? null : titleFrom(input.prompt)}::text,
      ${input.maxActive}, ${THINKING_PLACEHOLDER}, ${input.owner ?? null}::integer, ${input.modelId ?? null}::integer)`,
  );
}

/**
 * Runs `call`, a function returning begin_answer's row (begin_answer, edit_prompt), with the system prompts of the
 * answer's model and of the chat read in the same statement (migration 026), so they cost no round trip.
 */
export async function readBegunAnswer(db: Db, chatId: number, call: RawBuilder<unknown>): Promise<BeginAnswerResult> {
  const { rows } = await sql<
    ModelConnectionRow & {
      outcome: BeginAnswerResult['outcome'];
      idmessage: number;
      idresponse: number;
      prompt: string;
      history: EarlierTurn[];
      model_system_prompt: string | null;
      chat_system_prompt: string | null;
    } & Parameters<typeof refusalFrom>[0] &
      Parameters<typeof remainingFrom>[0]
  >`
    SELECT b.*,
      (SELECT l.system_prompt FROM chatbot_schema.llm l WHERE l.idllm = b.idllm) AS model_system_prompt,
      (SELECT c.system_prompt FROM chatbot_schema.chat c WHERE c.idchat = ${chatId}) AS chat_system_prompt
    FROM ${call} b`.execute(db);
  const row = rows[0];
  if (!row) throw new Error('begin_answer returned no row');
  if (row.outcome === 'over_limit') return { outcome: 'over_limit', refusal: refusalFrom(row) };
  if (row.outcome !== 'ok') return { outcome: row.outcome };
  const { outcome, idmessage, idresponse, prompt, history, idllm, txshortname, txbase_url, txapi_key_enc, txmodel, is_enabled } = row;
  const model = { idllm, txshortname, txbase_url, txapi_key_enc, txmodel, is_enabled };
  const systemPrompts = { model: row.model_system_prompt, chat: row.chat_system_prompt };
  return { outcome, messageId: idmessage, responseId: idresponse, prompt, history, model, remaining: remainingFrom(row), systemPrompts };
}

export function titleFrom(prompt: string): string {
  const oneLine = withoutBidiControls(prompt).replace(/\s+/g, ' ').trim();
  const chars = [...oneLine];
  return chars.length > TITLE_MAX_CHARS ? `${chars.slice(0, TITLE_MAX_CHARS - 1).join('')}…` : oneLine || 'New chat';
}

export async function findResponseInChat(db: Db, chatId: number, responseId: number): Promise<{ id: number; status: ResponseStatus } | undefined> {
  return db
    .selectFrom('chatbot_schema.response')
    .select(['idresponse as id', 'txstatus as status'])
    .where('idchat', '=', chatId)
    .where('idresponse', '=', responseId)
    .executeTakeFirst();
}
