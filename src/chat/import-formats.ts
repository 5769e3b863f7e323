import { z } from 'zod';
import { withoutBidiControls } from '../http/display-name.ts';
import { BadRequestError } from '../http/errors.ts';
import { EXPORT_VERSION } from './transfer-format.ts';

/** A chat read from a file, whatever its format, before it is stored (transfer-queries.ts: storeImportedChats). */
export interface ChatToImport {
  title: string;
  /** The model's short name in the file, if it names one. */
  model: string | null;
  createdAt: Date;
  updatedAt: Date;
  turns: TurnToImport[];
}

export type FinalStatus = 'complete' | 'stopped' | 'error' | 'interrupted';

export interface TurnToImport {
  prompt: string;
  createdAt: Date;
  answer: { markdown: string; model: string | null; status: FinalStatus; startedAt: Date; endedAt: Date | null } | null;
}

export interface ParsedImport {
  format: 'parley' | 'chatgpt';
  chats: ChatToImport[];
  /** Chats of the file left out on purpose (nothing to import in them), with why. */
  skipped: Array<{ title: string; reason: string }>;
}

/** The whole file is refused (400, nothing imported): `chat` is its 1-based place in the file, when one is to blame. */
export class ImportRefusedError extends BadRequestError {}

export const refuseChat = (n: number, title: unknown, problem: string): ImportRefusedError =>
  new ImportRefusedError(`Chat ${n}${typeof title === 'string' && title ? ` (“${title.slice(0, 60)}”)` : ''} in the file: ${problem} Nothing was imported.`);

export const IMPORTED_TITLE_MAX_CHARS = 200;

/** Titles are shown to admins too: no bidi controls, one line, at most IMPORTED_TITLE_MAX_CHARS. */
export function importedTitle(raw: string | null | undefined): string {
  const line = withoutBidiControls(raw ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = [...line];
  if (chars.length === 0) return 'Imported chat';
  return chars.length > IMPORTED_TITLE_MAX_CHARS ? `${chars.slice(0, IMPORTED_TITLE_MAX_CHARS - 1).join('')}…` : line;
}

/** The earliest and latest dates we take from a file: JavaScript, PostgreSQL and people all agree on these. */
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31);
export const isSaneDate = (d: Date) => !Number.isNaN(d.getTime()) && d.getTime() >= EARLIEST && d.getTime() <= LATEST;

const isoDate = z
  .string()
  .max(40)
  .transform((s) => new Date(s))
  .refine(isSaneDate, 'not a date');

const ourAnswer = z.object({
  markdown: z.string(),
  model: z.string().max(200).nullish(),
  status: z.enum(['pending', 'streaming', 'complete', 'stopped', 'error', 'interrupted']),
  started_at: isoDate.nullish(),
  ended_at: isoDate.nullish(),
});
const ourChat = z.object({
  title: z.string().nullish(),
  model: z.string().max(200).nullish(),
  created_at: isoDate,
  updated_at: isoDate.nullish(),
  turns: z.array(z.object({ prompt: z.string(), created_at: isoDate, answer: ourAnswer.nullish() })),
});

/** Our own file (transfer-format.ts). An answer cut off by the export (still being written) comes back `interrupted`. */
export function chatsFromParley(file: { chats?: unknown; version?: unknown }): ParsedImport {
  if (file.version !== EXPORT_VERSION)
    throw new ImportRefusedError(`This Parley export has version ${String(file.version)}; this server reads version ${EXPORT_VERSION}.`);
  if (!Array.isArray(file.chats)) throw new ImportRefusedError('This Parley export has no list of chats.');
  const chats: ChatToImport[] = [];
  const skipped: ParsedImport['skipped'] = [];
  file.chats.forEach((raw, i) => {
    const parsed = ourChat.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw refuseChat(i + 1, (raw as { title?: unknown } | null)?.title, `${issue?.path.join('.') || 'the chat'}: ${issue?.message ?? 'not a chat'}.`);
    }
    const c = parsed.data;
    const title = importedTitle(c.title);
    if (c.turns.length === 0) {
      skipped.push({ title, reason: 'no messages' });
      return;
    }
    chats.push({
      title,
      model: c.model || null,
      createdAt: c.created_at,
      updatedAt: c.updated_at ?? c.created_at,
      turns: c.turns.map((t) => ({
        prompt: t.prompt,
        createdAt: t.created_at,
        answer: t.answer
          ? {
              markdown: t.answer.markdown,
              model: t.answer.model || null,
              status: t.answer.status === 'pending' || t.answer.status === 'streaming' ? 'interrupted' : t.answer.status,
              startedAt: t.answer.started_at ?? t.created_at,
              endedAt: t.answer.ended_at ?? null,
            }
          : null,
      })),
    });
  });
  return { format: 'parley', chats, skipped };
}
