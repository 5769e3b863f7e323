import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../auth/guards.ts';
import type { Db } from '../db/database.ts';
import { BadRequestError, HttpError, NotFoundError } from '../http/errors.ts';
import { parseJsonOrThrow, pathId } from '../http/validation.ts';
import { IMPORT_MAX_BYTES, parseImportFile } from './import-file.ts';
import type { ParsedImport } from './import-formats.ts';
import { chatAsJsonFile, chatAsMarkdown, exportedChat, exportFileName, FILE_END, fileStart } from './transfer-format.ts';
import { findChatForExport, pagesOfChatsForExport, storeImportedChats } from './transfer-queries.ts';

const IMPORT_MAX_MIB = IMPORT_MAX_BYTES / 1024 / 1024;
/** The form's other fields (the CSRF token) and multipart's own framing, beyond the file. */
const IMPORT_OVERHEAD_BYTES = 64 * 1024;

const exportQuery = z.strictObject({ format: z.enum(['md', 'json'], { message: 'format must be md or json' }) });

const TOO_LARGE = `The file is too large: the import takes at most ${IMPORT_MAX_MIB} MiB. Nothing was imported.`;

function download(reply: FastifyReply, fileName: string, contentType: string): FastifyReply {
  // The name is ASCII letters, digits, dashes and a dot (exportFileName): nothing in it can end the quoted string.
  return reply.header('content-disposition', `attachment; filename="${fileName}"`).header('cache-control', 'no-store').type(contentType);
}

/** All of one user's chats as one JSON file, written a page of chats at a time (pagesOfChatsForExport). */
async function* allChatsFile(db: Db, userId: number): AsyncGenerator<string> {
  yield fileStart(new Date());
  let separator = '\n';
  for await (const page of pagesOfChatsForExport(db, userId)) {
    yield separator + page.map((chat) => JSON.stringify(exportedChat(chat))).join(',\n');
    separator = ',\n';
  }
  yield FILE_END;
}

/** "412 chats imported, 3 skipped: no text messages (2), no current branch (1)." */
export function importSummary(imported: number, skipped: ParsedImport['skipped']): string {
  const chats = (n: number) => `${n} chat${n === 1 ? '' : 's'}`;
  if (skipped.length === 0) return `${chats(imported)} imported.`;
  const reasons = new Map<string, number>();
  for (const s of skipped) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  const why = [...reasons].map(([reason, n]) => `${reason} (${n})`).join(', ');
  return `${chats(imported)} imported, ${skipped.length} skipped: ${why}.`;
}

/** The uploaded file's bytes; anything wrong with the upload itself is a 4xx that says what. */
async function uploadedFile(req: FastifyRequest): Promise<Buffer> {
  if (!req.isMultipart()) throw new BadRequestError('Send the file with the import form on Settings (multipart/form-data).');
  if (Number(req.headers['content-length']) > IMPORT_MAX_BYTES + IMPORT_OVERHEAD_BYTES) throw new HttpError(413, TOO_LARGE);
  let bytes: Buffer | undefined;
  try {
    const file = await req.file();
    bytes = await file?.toBuffer();
  } catch (err) {
    if (err instanceof req.server.multipartErrors.RequestFileTooLargeError) throw new HttpError(413, TOO_LARGE);
    // A broken multipart body (no boundary, cut short, too many parts): the client's fault, named as such.
    throw new BadRequestError('The upload could not be read. Choose the file again and send the form once more.');
  }
  if (!bytes || bytes.length === 0) throw new BadRequestError('Choose a file to import.');
  return bytes;
}

/**
 * Export and import of chats (README "Export and import"): one chat as Markdown or JSON, all of one's chats as one
 * streamed JSON file, and the import of that file or of ChatGPT's conversations.json. Multipart is registered here
 * only (encapsulated): no other route of this plugin takes it, and no route outside it sees it.
 */
export async function chatTransferRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;
  await app.register(multipart, { limits: { fileSize: IMPORT_MAX_BYTES, files: 1, fields: 4, parts: 5, fieldSize: 1024 } });

  app.get('/api/chats/:id/export', async (req, reply) => {
    const user = requireUser(req);
    const chatId = pathId(req.params);
    const { format } = parseJsonOrThrow(exportQuery, req.query);
    const chat = await findChatForExport(db, user.userId, chatId);
    if (!chat) throw new NotFoundError('Chat not found');
    if (format === 'md') return download(reply, exportFileName(chat, 'md'), 'text/markdown; charset=utf-8').send(chatAsMarkdown(chat));
    return download(reply, exportFileName(chat, 'json'), 'application/json; charset=utf-8').send(chatAsJsonFile(chat, new Date()));
  });

  app.get('/settings/export', async (req, reply) => {
    const user = requireUser(req);
    const day = new Date().toISOString().slice(0, 10);
    const file = Readable.from(allChatsFile(db, user.userId));
    file.on('error', (err) => req.log.error({ err }, 'the export of all chats stopped'));
    return download(reply, `parley-chats-${day}.json`, 'application/json; charset=utf-8').send(file);
  });

  // The form posts with fetch (web/transfer.ts), the CSRF token in its header: a multipart body is read after the
  // CSRF check runs, so a `_csrf` field in it would come too late.
  app.post('/settings/import', async (req, reply) => {
    const user = requireUser(req);
    const parsed = parseImportFile(await uploadedFile(req));
    const imported = parsed.chats.length === 0 ? 0 : await storeImportedChats(db, user.userId, parsed.chats);
    const message = importSummary(imported, parsed.skipped);
    reply.flash(imported > 0 ? 'success' : 'warning', message);
    return { imported, skipped: parsed.skipped, format: parsed.format, message, location: '/chat' };
  });
}
