import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { CheckedAttachment } from './attachment-checks.ts';
import { IMAGE_CHARS, type ModelFile } from './attachment-prompt.ts';

/** A file of a prompt as the page and the API list it (its bytes are fetched on their own). */
export interface AttachmentSummary {
  id: number;
  name: string;
  kind: 'text' | 'image';
  mediaType: string;
  bytes: number;
}

export async function insertAttachments(db: Db, messageId: number, files: CheckedAttachment[]): Promise<void> {
  if (files.length === 0) return;
  await db
    .insertInto('chatbot_schema.attachment')
    .values(
      files.map((f) => ({
        idmessage: messageId,
        txname: f.name,
        txkind: f.kind,
        txmedia_type: f.mediaType,
        nbytes: f.content.length,
        nchars: f.chars,
        bcontent: f.content,
      })),
    )
    .execute();
}

/** Whether the admin marked the model as taking images; read under a share lock, so an unticking waits for our commit. */
export async function modelTakesImages(db: Db, modelId: number): Promise<boolean> {
  const row = await db.selectFrom('chatbot_schema.llm').select('vision').where('idllm', '=', modelId).forShare().executeTakeFirst();
  return row?.vision ?? false;
}

/** Each prompt's files in a chat, by message id, in the order they were sent. */
export async function listChatAttachments(db: Db, chatId: number): Promise<Map<number, AttachmentSummary[]>> {
  const rows = await db
    .selectFrom('chatbot_schema.attachment as a')
    .innerJoin('chatbot_schema.message as m', 'm.idmessage', 'a.idmessage')
    .select(['a.idmessage', 'a.idattachment as id', 'a.txname as name', 'a.txkind as kind', 'a.txmedia_type as mediaType', 'a.nbytes as bytes'])
    .where('m.idchat', '=', chatId)
    .orderBy('a.idattachment')
    .execute();
  const byMessage = new Map<number, AttachmentSummary[]>();
  for (const { idmessage, ...summary } of rows) byMessage.set(idmessage, [...(byMessage.get(idmessage) ?? []), summary]);
  return byMessage;
}

/** One file, only if it belongs to this user's chat: another user's is not found, like their chat. */
export async function findOwnedAttachment(db: Db, userId: number, chatId: number, attachmentId: number) {
  const row = await db
    .selectFrom('chatbot_schema.attachment as a')
    .innerJoin('chatbot_schema.message as m', 'm.idmessage', 'a.idmessage')
    .innerJoin('chatbot_schema.chat as c', 'c.idchat', 'm.idchat')
    .select(['a.txname as name', 'a.txkind as kind', 'a.txmedia_type as mediaType', 'a.bcontent as content'])
    .where('a.idattachment', '=', attachmentId)
    .where('c.idchat', '=', chatId)
    .where('c.idappuser', '=', userId)
    .executeTakeFirst();
  return row && { ...row, content: Buffer.from(row.content) };
}

/**
 * The files of a chat's prompts up to `messageId` (the one being answered), for the model: how many prompts there are,
 * each file with its prompt's position among them, and whether the answering model takes images. Bytes are read only
 * where they can be sent: the answered prompt's, and those of earlier prompts whose files, counted from the newest,
 * still fit `maxChars` (a turn beyond that cannot fit the history anyway, see historyWith), and an image's only for a
 * vision model. A chat without files costs one row.
 */
export async function filesForModel(
  db: Db,
  input: { chatId: number; messageId: number; modelId: number; maxChars: number },
): Promise<{ vision: boolean; messages: number; files: Array<{ position: number; messageId: number; file: ModelFile }> }> {
  const { rows } = await sql<{
    vision: boolean;
    messages: number;
    position: number | null;
    idmessage: number | null;
    name: string | null;
    kind: 'text' | 'image' | null;
    media_type: string | null;
    chars: number | null;
    content: Uint8Array | null;
  }>`
    WITH msgs AS (
      SELECT m.idmessage, (row_number() OVER (ORDER BY m.idmessage))::int - 1 AS position
        FROM chatbot_schema.message m WHERE m.idchat = ${input.chatId} AND m.idmessage <= ${input.messageId}
    ),
    model AS (
      SELECT coalesce((SELECT l.vision FROM chatbot_schema.llm l WHERE l.idllm = ${input.modelId}), false) AS vision,
             (SELECT count(*) FROM msgs)::int AS messages
    ),
    files AS (
      SELECT a.idattachment, a.idmessage,
             sum(CASE WHEN a.txkind = 'text' THEN a.nchars ELSE ${IMAGE_CHARS} END)
               OVER (ORDER BY a.idmessage DESC, a.idattachment DESC) AS newer_chars
        FROM chatbot_schema.attachment a JOIN msgs ON msgs.idmessage = a.idmessage
       WHERE a.idmessage < ${input.messageId}
      UNION ALL
      SELECT a.idattachment, a.idmessage, 0 FROM chatbot_schema.attachment a WHERE a.idmessage = ${input.messageId}
    )
    SELECT model.vision, model.messages, msgs.position, msgs.idmessage, a.txname AS name, a.txkind AS kind,
           a.txmedia_type AS media_type, a.nchars AS chars,
           CASE WHEN f.newer_chars <= ${input.maxChars} AND (a.txkind = 'text' OR model.vision) THEN a.bcontent END AS content
      FROM model
      LEFT JOIN (files f JOIN msgs ON msgs.idmessage = f.idmessage JOIN chatbot_schema.attachment a ON a.idattachment = f.idattachment) ON true
     ORDER BY msgs.position, a.idattachment`.execute(db);
  const files = rows.flatMap((r) =>
    r.position === null || r.idmessage === null || r.name === null || r.kind === null
      ? []
      : [
          {
            position: r.position,
            messageId: r.idmessage,
            file: { name: r.name, kind: r.kind, mediaType: r.media_type ?? '', chars: r.chars ?? 0, content: r.content && Buffer.from(r.content) },
          },
        ],
  );
  return { vision: rows[0]?.vision ?? false, messages: rows[0]?.messages ?? 0, files };
}
