import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ResponseStatus } from '../db/schema.ts';
import { ConflictError } from '../http/errors.ts';
import { selectPreferredModelId, userMayUse } from '../llm/llm-queries.ts';
import type { ChatToImport } from './import-formats.ts';
import { renderAdoptedAnswer } from './markdown.ts';
import type { ChatForExport } from './transfer-format.ts';

/** Chats read per query by the export of all one's chats: its memory is a page's, whatever the number of chats. */
export const EXPORT_PAGE_CHATS = 100;

const chatColumns = [
  'c.idchat as id',
  'c.txtitle as title',
  'l.txshortname as modelName',
  'c.dtcreated as createdAt',
  'c.dtupdated as updatedAt',
  'c.is_imported as imported',
] as const;

/** One user's chats with the columns an export writes (a `where` narrows them). */
const chatsOf = (db: Db, userId: number) =>
  db.selectFrom('chatbot_schema.chat as c').leftJoin('chatbot_schema.llm as l', 'l.idllm', 'c.idllm').select(chatColumns).where('c.idappuser', '=', userId);

/** The conversations of these chats (each prompt with its latest answer, as the chat page shows it), by chat. */
async function turnsOfChats(db: Db, chatIds: number[]): Promise<Map<number, ChatForExport['turns']>> {
  const byChat = new Map<number, ChatForExport['turns']>(chatIds.map((id) => [id, []]));
  if (chatIds.length === 0) return byChat;
  const rows = await db
    .selectFrom('chatbot_schema.message as m')
    .leftJoin(
      (eb) =>
        eb
          .selectFrom('chatbot_schema.response')
          .distinctOn('idmessage')
          .select(['idmessage', 'idllm', 'txstatus', 'txmarkdown', 'tinf_start', 'tinf_end'])
          .where('idchat', 'in', chatIds)
          .orderBy('idmessage')
          .orderBy('idresponse', 'desc')
          .as('r'),
      (join) => join.onRef('r.idmessage', '=', 'm.idmessage'),
    )
    .leftJoin('chatbot_schema.llm as l', 'l.idllm', 'r.idllm')
    .select(['m.idchat', 'm.txmessage', 'm.dtcreated', 'r.idmessage as answered', 'r.txstatus', 'r.txmarkdown', 'r.tinf_start', 'r.tinf_end', 'l.txshortname'])
    .where('m.idchat', 'in', chatIds)
    .orderBy('m.idchat')
    .orderBy('m.idmessage')
    .execute();
  for (const r of rows) {
    byChat.get(r.idchat)?.push({
      prompt: r.txmessage,
      createdAt: r.dtcreated,
      answer:
        r.answered === null
          ? null
          : {
              markdown: r.txmarkdown ?? '',
              modelName: r.txshortname ?? '',
              status: (r.txstatus ?? 'complete') as ResponseStatus,
              startedAt: r.tinf_start,
              endedAt: r.tinf_end,
            },
    });
  }
  return byChat;
}

/** One chat with its conversation, only if it is this user's. */
export async function findChatForExport(db: Db, userId: number, chatId: number): Promise<ChatForExport | undefined> {
  const chat = await chatsOf(db, userId).where('c.idchat', '=', chatId).executeTakeFirst();
  if (!chat) return undefined;
  const turns = await turnsOfChats(db, [chat.id]);
  return { ...chat, modelName: chat.modelName ?? '', turns: turns.get(chat.id) ?? [] };
}

/**
 * All of one user's chats, oldest first, a page at a time: each page is two queries (the chats after the last one
 * read, by id, through chat's primary key; then their conversations), so the caller can write a page out before the
 * next is read. Chats made while it runs are included if their id is past the page being read.
 */
export async function* pagesOfChatsForExport(db: Db, userId: number, pageChats = EXPORT_PAGE_CHATS): AsyncGenerator<ChatForExport[]> {
  let after = 0;
  for (;;) {
    const chats = await chatsOf(db, userId).where('c.idchat', '>', after).orderBy('c.idchat').limit(pageChats).execute();
    if (chats.length === 0) return;
    const turns = await turnsOfChats(
      db,
      chats.map((c) => c.id),
    );
    yield chats.map((c) => ({ ...c, modelName: c.modelName ?? '', turns: turns.get(c.id) ?? [] }));
    after = chats.at(-1)?.id ?? after;
    if (chats.length < pageChats) return;
  }
}

interface ModelChoice {
  id: number;
  name: string;
  /** Enabled, with a server, and allowed to this user: a chat may go on with it. */
  usable: boolean;
}

/**
 * Which model an imported chat and its answers belong to (docs/decisions/023): an answer, to the model with the
 * same short name if there is one (a label of who wrote it; nobody is asked), else to its chat's model; a chat, to
 * the model of its name if this user may go on chatting with it, else to the one a new chat of theirs would start
 * with (selectPreferredModelId), else to the admin's default or any model (the chat stays readable).
 */
async function modelChooser(
  db: Db,
  userId: number,
): Promise<{ forChat(name: string | null): number; forAnswer(name: string | null, chatModel: number): number }> {
  const models: ModelChoice[] = await db
    .selectFrom('chatbot_schema.llm')
    .select(['idllm as id', 'txshortname as name', sql<boolean>`is_enabled AND txbase_url IS NOT NULL AND ${userMayUse(userId, 'idllm')}`.as('usable')])
    .orderBy('is_default', 'desc')
    .orderBy('idllm')
    .execute();
  const fallback = (await selectPreferredModelId(db, sql<number>`${userId}::int`).executeTakeFirst())?.idllm ?? models[0]?.id;
  if (fallback === undefined)
    throw new ConflictError('There is no model on this server yet, and imported chats need one. Ask an administrator to add a model.');
  const byName = (name: string | null) =>
    name ? (models.find((m) => m.name === name) ?? models.find((m) => m.name.toLowerCase() === name.toLowerCase())) : undefined;
  return {
    forChat: (name) => {
      const named = byName(name);
      return named?.usable ? named.id : fallback;
    },
    forAnswer: (name, chatModel) => byName(name)?.id ?? chatModel,
  };
}

/** `n` fresh ids of a serial column, taken together: the rows are then inserted with them, many per statement. */
async function takeIds(trx: Db, table: string, column: string, n: number): Promise<number[]> {
  if (n === 0) return [];
  const r = await sql<{ id: number }>`SELECT nextval(pg_get_serial_sequence(${table}, ${column}))::int AS id FROM generate_series(1, ${n})`.execute(trx);
  return r.rows.map((row) => row.id);
}

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters a statement for the widest row here (10 columns). */
const INSERT_ROWS = 1_000;

async function insertInChunks<T>(rows: T[], insert: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_ROWS) await insert(rows.slice(i, i + INSERT_ROWS));
}

/**
 * Stores the chats of one file for this user, all or nothing (one transaction). The chats and their rows are marked
 * imported (migration 029: the rows are not model usage; what is asked in the chat later is), keep their dates, and their answers' HTML is rendered here from their markdown
 * by the same renderer and sanitizer as a model's answers. Returns how many chats were stored.
 */
export async function storeImportedChats(db: Db, userId: number, chats: ChatToImport[]): Promise<number> {
  const choose = await modelChooser(db, userId);
  // Rendered before the transaction opens, so it holds its locks only while it writes. (renderAdoptedAnswer: the
  // markdown renderer of every answer, which shows text it cannot render as plain text instead of throwing.)
  const html = chats.map((c) => c.turns.map((t) => (t.answer ? renderAdoptedAnswer(t.answer.markdown, null) : '')));
  return db.transaction().execute(async (trx) => {
    const chatIds = await takeIds(trx, 'chatbot_schema.chat', 'idchat', chats.length);
    const messageIds = await takeIds(
      trx,
      'chatbot_schema.message',
      'idmessage',
      chats.reduce((n, c) => n + c.turns.length, 0),
    );
    const chatRows = [];
    const messageRows = [];
    const responseRows = [];
    let m = 0;
    for (const [i, chat] of chats.entries()) {
      const chatHtml = html[i] as string[];
      const idchat = chatIds[i] as number;
      const idllm = choose.forChat(chat.model);
      chatRows.push({ idchat, idappuser: userId, idllm, txtitle: chat.title, dtcreated: chat.createdAt, dtupdated: chat.updatedAt, is_imported: true });
      for (const [t, turn] of chat.turns.entries()) {
        const idmessage = messageIds[m++] as number;
        messageRows.push({ idmessage, idchat, txmessage: turn.prompt, dtcreated: turn.createdAt, is_imported: true });
        if (!turn.answer) continue;
        const a = turn.answer;
        responseRows.push({
          idchat,
          idmessage,
          idllm: choose.forAnswer(a.model, idllm),
          txmarkdown: a.markdown,
          txcontent: chatHtml[t] as string,
          txstatus: a.status,
          tinf_start: a.startedAt,
          tinf_end: a.endedAt,
          is_html_ours: true,
          is_imported: true,
        });
      }
    }
    await insertInChunks(chatRows, (rows) => trx.insertInto('chatbot_schema.chat').values(rows).execute());
    await insertInChunks(messageRows, (rows) => trx.insertInto('chatbot_schema.message').values(rows).execute());
    await insertInChunks(responseRows, (rows) => trx.insertInto('chatbot_schema.response').values(rows).execute());
    return chatRows.length;
  });
}
