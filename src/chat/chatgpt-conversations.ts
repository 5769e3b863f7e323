import { z } from 'zod';
import { type ChatToImport, importedTitle, isSaneDate, type ParsedImport, refuseChat, type TurnToImport } from './import-formats.ts';

/**
 * ChatGPT's data export, conversations.json: an array of conversations, each a tree of messages (`mapping`, node id →
 * {id, message, parent, children}) because an edited prompt or a regenerated answer starts a branch beside the old
 * one. The branch the user last saw ends at `current_node`: it is followed up through the parents and reversed.
 * Only user and assistant text is kept; system and tool messages, non-text parts (images, code runs, browsing) and
 * empty nodes (`message: null`, the root) are left out. Dates are seconds since 1970 (fractions allowed).
 */

const seconds = z.number().nullish();
const node = z.object({
  parent: z.string().nullish(),
  message: z
    .object({
      author: z.object({ role: z.string() }),
      content: z.object({ content_type: z.string(), parts: z.array(z.unknown()).nullish() }).nullish(),
      create_time: seconds,
      metadata: z
        .object({ model_slug: z.string().max(200).nullish(), is_visually_hidden_from_conversation: z.boolean().nullish() })
        .loose()
        .nullish(),
    })
    .nullish(),
});
const conversation = z.object({
  title: z.string().nullish(),
  create_time: seconds,
  update_time: seconds,
  current_node: z.string().nullish(),
  default_model_slug: z.string().max(200).nullish(),
  mapping: z.record(z.string(), node),
});
type Conversation = z.infer<typeof conversation>;
type Message = NonNullable<z.infer<typeof node>['message']>;

const TEXT_CONTENT = new Set(['text', 'multimodal_text']);

function dateOf(value: number | null | undefined): Date | null {
  if (typeof value !== 'number') return null;
  const d = new Date(value * 1000);
  return isSaneDate(d) ? d : null;
}

/** The text of a user or assistant message, or null when it has none we keep (an image alone, a tool's output). */
function textOf(message: Message): string | null {
  if (message.author.role !== 'user' && message.author.role !== 'assistant') return null;
  if (message.metadata?.is_visually_hidden_from_conversation) return null;
  if (!message.content || !TEXT_CONTENT.has(message.content.content_type)) return null;
  const text = (message.content.parts ?? [])
    .filter((p): p is string => typeof p === 'string')
    .join('\n')
    .trim();
  return text === '' ? null : text;
}

/** The messages of the current branch, root first. Null: the file's tree is broken (a missing node or a loop). */
function currentBranch(c: Conversation): Message[] | null {
  const branch: Message[] = [];
  const seen = new Set<string>();
  // Own keys only: a node id such as `__proto__` must not reach the object's prototype.
  const nodeOf = (id: string) => (Object.hasOwn(c.mapping, id) ? c.mapping[id] : undefined);
  for (let id = c.current_node; id; id = nodeOf(id)?.parent) {
    const n = nodeOf(id);
    if (!n || seen.has(id)) return null;
    seen.add(id);
    if (n.message) branch.push(n.message);
  }
  return branch.reverse();
}

/** Pairs the branch's text into turns: a prompt, then what the assistant said until the next prompt. */
function turnsOf(branch: Message[], startedAt: Date): TurnToImport[] {
  const turns: TurnToImport[] = [];
  let last = startedAt;
  for (const message of branch) {
    const text = textOf(message);
    if (text === null) continue;
    const at = dateOf(message.create_time) ?? last;
    last = at;
    if (message.author.role === 'user') {
      turns.push({ prompt: text, createdAt: at, answer: null });
      continue;
    }
    const turn = turns.at(-1);
    if (!turn) continue; // an assistant's greeting before any prompt has no prompt to belong to
    const model = message.metadata?.model_slug || null;
    turn.answer = turn.answer
      ? { ...turn.answer, markdown: `${turn.answer.markdown}\n\n${text}`, endedAt: at, model: model ?? turn.answer.model }
      : { markdown: text, model, status: 'complete', startedAt: turn.createdAt, endedAt: at };
  }
  return turns;
}

export function chatsFromChatGpt(file: unknown[]): ParsedImport {
  const chats: ChatToImport[] = [];
  const skipped: ParsedImport['skipped'] = [];
  file.forEach((raw, i) => {
    const parsed = conversation.safeParse(raw);
    const rawTitle = (raw as { title?: unknown }).title;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw refuseChat(i + 1, rawTitle, `${issue?.path.join('.') || 'the conversation'}: ${issue?.message ?? 'not a conversation'}.`);
    }
    const c = parsed.data;
    const title = importedTitle(c.title);
    if (!c.current_node) {
      skipped.push({ title, reason: 'no current branch (current_node)' });
      return;
    }
    const branch = currentBranch(c);
    if (!branch) throw refuseChat(i + 1, rawTitle, 'its current_node does not lead to the root of its mapping (a missing node or a loop).');
    const createdAt = dateOf(c.create_time) ?? dateOf(branch.find((m) => m.create_time)?.create_time) ?? new Date();
    const turns = turnsOf(branch, createdAt);
    if (turns.length === 0) {
      skipped.push({ title, reason: 'no text messages' });
      return;
    }
    const lastModel = turns.findLast((t) => t.answer?.model)?.answer?.model;
    const updatedAt = dateOf(c.update_time) ?? turns.at(-1)?.answer?.endedAt ?? turns.at(-1)?.createdAt ?? createdAt;
    chats.push({ title, model: lastModel ?? c.default_model_slug ?? null, createdAt, updatedAt, turns });
  });
  return { format: 'chatgpt', chats, skipped };
}
