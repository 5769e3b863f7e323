import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { html, type SafeHtml } from '../views/html.ts';

export interface AttachmentStorage {
  files: number;
  bytes: number;
}

/** What one's files and images take in the database (migration 027): they go with the chats they were sent in. */
export async function readAttachmentStorage(db: Db, userId: number): Promise<AttachmentStorage> {
  const row = await db
    .selectFrom('chatbot_schema.attachment as a')
    .innerJoin('chatbot_schema.message as m', 'm.idmessage', 'a.idmessage')
    .innerJoin('chatbot_schema.chat as c', 'c.idchat', 'm.idchat')
    .select([sql<string>`count(*)`.as('files'), sql<string>`coalesce(sum(a.nbytes), 0)`.as('bytes')])
    .where('c.idappuser', '=', userId)
    .executeTakeFirstOrThrow();
  return { files: Number(row.files), bytes: Number(row.bytes) };
}

const megabytes = new Intl.NumberFormat('en', { style: 'unit', unit: 'megabyte', maximumFractionDigits: 1 });

export function attachmentStorageSection(storage: AttachmentStorage | undefined): SafeHtml {
  if (!storage) return html``;
  const figure =
    storage.files === 0
      ? 'You have not sent any files or images yet.'
      : `${storage.files.toLocaleString('en')} attached ${storage.files === 1 ? 'file' : 'files'}, ${megabytes.format(storage.bytes / 1_000_000)} in all.`;
  return html`<section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Files and images</h2>
    <p class="mb-1" id="attachment-storage" data-bytes="${storage.bytes}">${figure}</p>
    <p class="text-body-secondary small mb-0">What you attached to your prompts, stored with your chats. Deleting a chat deletes its files.</p>
  </div></section>`;
}
