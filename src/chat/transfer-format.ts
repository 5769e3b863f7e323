import type { ResponseStatus } from '../db/schema.ts';

/**
 * Parley's own export file: one chat (GET /api/chats/:id/export?format=json) or all of them (GET /settings/export)
 * have the same shape, so either can be imported again (POST /settings/import). Prompts and answers' markdown only:
 * the HTML is ours to render again on import, never taken from a file.
 */
export const EXPORT_FORMAT = 'parley-chats';
export const EXPORT_VERSION = 1;

export interface ExportedAnswer {
  markdown: string;
  /** The short name of the model that wrote it ('' when that model was deleted since). */
  model: string;
  status: ResponseStatus;
  started_at: string | null;
  ended_at: string | null;
}

export interface ExportedTurn {
  prompt: string;
  created_at: string;
  answer: ExportedAnswer | null;
}

export interface ExportedChat {
  title: string;
  model: string;
  created_at: string;
  updated_at: string;
  imported: boolean;
  turns: ExportedTurn[];
}

/** A chat with its conversation as the export reads it (transfer-queries.ts). */
export interface ChatForExport {
  id: number;
  title: string | null;
  modelName: string;
  createdAt: Date;
  updatedAt: Date;
  imported: boolean;
  turns: Array<{
    prompt: string;
    createdAt: Date;
    answer: { markdown: string; modelName: string; status: ResponseStatus; startedAt: Date | null; endedAt: Date | null } | null;
  }>;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export function exportedChat(chat: ChatForExport): ExportedChat {
  return {
    title: chat.title ?? 'New chat',
    model: chat.modelName,
    created_at: chat.createdAt.toISOString(),
    updated_at: chat.updatedAt.toISOString(),
    imported: chat.imported,
    turns: chat.turns.map((t) => ({
      prompt: t.prompt,
      created_at: t.createdAt.toISOString(),
      answer: t.answer && {
        markdown: t.answer.markdown,
        model: t.answer.modelName,
        status: t.answer.status,
        started_at: iso(t.answer.startedAt),
        ended_at: iso(t.answer.endedAt),
      },
    })),
  };
}

/** The opening of the file, up to the chats' array; the chats follow, comma-separated, then FILE_END. */
export function fileStart(exportedAt: Date): string {
  return `{"format":${JSON.stringify(EXPORT_FORMAT)},"version":${EXPORT_VERSION},"exported_at":${JSON.stringify(exportedAt.toISOString())},"chats":[`;
}
export const FILE_END = ']}\n';

export function chatAsJsonFile(chat: ChatForExport, exportedAt: Date): string {
  return `${fileStart(exportedAt)}\n${JSON.stringify(exportedChat(chat))}${FILE_END}`;
}

/** One chat for people: a heading per prompt and per answer, the answers' markdown as the model wrote it. */
export function chatAsMarkdown(chat: ChatForExport): string {
  const lines = [
    `# ${oneLine(chat.title ?? 'New chat')}`,
    '',
    `- Model: ${chat.modelName || 'unknown'}`,
    `- Created: ${chat.createdAt.toISOString()}`,
    `- Updated: ${chat.updatedAt.toISOString()}`,
    ...(chat.imported ? ['- Imported'] : []),
    '',
  ];
  for (const turn of chat.turns) {
    lines.push(`## You · ${turn.createdAt.toISOString()}`, '', turn.prompt, '');
    if (!turn.answer) continue;
    const when = turn.answer.endedAt ?? turn.answer.startedAt;
    const status = turn.answer.status === 'complete' ? '' : ` (${turn.answer.status})`;
    lines.push(`## ${oneLine(turn.answer.modelName || 'Model')}${status}${when ? ` · ${when.toISOString()}` : ''}`, '', turn.answer.markdown, '');
  }
  return lines.join('\n');
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * A file name any system accepts and no header can be broken with: ASCII letters, digits and dashes from the title,
 * after the chat's id (so two chats with one title never share a name).
 */
export function exportFileName(chat: { id: number; title: string | null }, extension: 'md' | 'json'): string {
  const slug = (chat.title ?? '')
    .normalize('NFKD') // é → e + a combining accent, which goes with the rest
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '')
    .toLowerCase();
  return `parley-chat-${chat.id}${slug ? `-${slug}` : ''}.${extension}`;
}
