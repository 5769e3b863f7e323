import type { Db } from '../db/database.ts';
import type { ChatTurn } from '../llm/model-client.ts';

/** The instructions an answer is written under (migration 026): the admin's for its model, the owner's for the chat. */
export interface SystemPrompts {
  model: string | null;
  chat: string | null;
}

/** What the model is sent first: the model's system prompt, then the chat's (the more specific one has the last word). */
export function systemMessages(prompts: SystemPrompts): ChatTurn[] {
  return [prompts.model, prompts.chat].filter((p) => p !== null && p !== '').map((content) => ({ role: 'system', content }) as ChatTurn);
}

export function charsOf(turns: ChatTurn[]): number {
  return turns.reduce((n, t) => n + t.content.length, 0);
}

/**
 * The whole request: the system prompts, then the conversation trimmed by `trimHistory` to what MAX_HISTORY_CHARS
 * leaves after them. The system prompts are never dropped, whatever their length (each is bounded by
 * SYSTEM_PROMPT_MAX_CHARS); the prompt itself is always sent too (trimHistory's rule). `trimHistory` may read what it
 * needs for that budget (the turns' files) before it trims.
 */
export async function withSystemPrompts(
  prompts: SystemPrompts,
  maxChars: number,
  trimHistory: (maxChars: number) => ChatTurn[] | Promise<ChatTurn[]>,
): Promise<ChatTurn[]> {
  const system = systemMessages(prompts);
  return [...system, ...(await trimHistory(maxChars - charsOf(system)))];
}

/** Sets (or, with null, removes) the chat's own system prompt. The caller has checked the chat is the user's. */
export async function setChatSystemPrompt(db: Db, chatId: number, prompt: string | null): Promise<void> {
  await db.updateTable('chatbot_schema.chat').set({ system_prompt: prompt }).where('idchat', '=', chatId).execute();
}
