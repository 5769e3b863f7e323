import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { type BeginAnswerResult, readBegunAnswer, THINKING_PLACEHOLDER, titleFrom } from './chat-queries.ts';

/**
 * Edit and resend (migration 026, chatbot_schema.edit_prompt): in one statement, under the chat's lock, the prompt
 * `messageId` and everything after it leave the chat and `prompt` is sent as the chat's newest prompt, exactly as
 * beginAnswer sends one. `busy` while an answer is in flight; `message_not_found` when the message is not in this
 * chat; any refusal of begin_answer (limits, access, model) leaves the chat as it was.
 */
export async function editPrompt(
  db: Db,
  input: { userId: number; chatId: number; messageId: number; prompt: string; maxActive: number; owner?: number | null },
): Promise<BeginAnswerResult> {
  return readBegunAnswer(
    db,
    input.chatId,
    sql`chatbot_schema.edit_prompt(
      ${input.userId}, ${input.chatId}, ${input.messageId}, ${input.prompt}::text, ${titleFrom(input.prompt)}::text,
      ${input.maxActive}, ${THINKING_PLACEHOLDER}, ${input.owner ?? null}::integer)`,
  );
}
