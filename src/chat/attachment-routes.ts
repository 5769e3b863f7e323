import type { FastifyInstance } from 'fastify';
import { requireUser } from '../auth/guards.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { pathId } from '../http/validation.ts';
import type { AttachmentSummary } from './attachment-queries.ts';
import { findOwnedAttachment, listChatAttachments } from './attachment-queries.ts';
import { listTurns, type TurnRecord } from './chat-queries.ts';

/** Turns with their prompts' files, for the page and GET /api/chats/:id. */
export async function listTurnsWithFiles(db: Db, chatId: number): Promise<Array<TurnRecord & { attachments: AttachmentSummary[] }>> {
  const [turns, files] = await Promise.all([listTurns(db, chatId), listChatAttachments(db, chatId)]);
  return turns.map((t) => ({ ...t, attachments: files.get(t.messageId) ?? [] }));
}

/** A file name for Content-Disposition (RFC 6266): an ASCII fallback, and the real name as RFC 8187 UTF-8. */
export function contentDisposition(type: 'inline' | 'attachment', name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/**
 * A prompt's file, to its owner only (another user's, or a wrong chat id: 404). Never HTML: an image goes as the type
 * its bytes were checked to be (inline: the thumbnails), a text file as text/plain (a download, so even a browser
 * that ignored the type would not render it), nosniff, and a sandboxing CSP should the response be opened anyway.
 */
export async function attachmentRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;
  app.get('/api/chats/:id/attachments/:idattachment', async (req, reply) => {
    const user = requireUser(req);
    const chatId = pathId(req.params);
    const file = await findOwnedAttachment(db, user.userId, chatId, pathId(req.params, 'idattachment'));
    if (!file) throw new NotFoundError('File not found');
    const image = file.kind === 'image';
    return reply
      .header('content-type', image ? file.mediaType : 'text/plain; charset=utf-8')
      .header('content-disposition', contentDisposition(image ? 'inline' : 'attachment', file.name))
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
      .header('cache-control', 'private, max-age=300')
      .send(file.content);
  });
}
