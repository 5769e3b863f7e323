import type { Db } from '../db/database.ts';
import { BadRequestError } from '../http/errors.ts';
import type { CheckedAttachment } from './attachment-checks.ts';
import type { ModelFile } from './attachment-prompt.ts';
import { filesForModel, insertAttachments, modelTakesImages } from './attachment-queries.ts';
import { type BeginAnswerResult, beginAnswer, type EarlierTurn } from './chat-queries.ts';

type BeginInput = Parameters<typeof beginAnswer>[1];

/**
 * beginAnswer, with a new prompt's files stored in the same transaction: begin_answer decides under the chat's lock
 * which model answers, so "an image to a model that does not take images" is checked against that very model, and a
 * refusal rolls back the prompt, its placeholder and its usage reservation with the files. Without files: beginAnswer
 * as before, one round trip.
 */
export async function beginAnswerWithFiles(db: Db, input: BeginInput, files: CheckedAttachment[]): Promise<BeginAnswerResult> {
  if (files.length === 0) return beginAnswer(db, input);
  return db.transaction().execute(async (trx) => {
    const begun = await beginAnswer(trx, input);
    if (begun.outcome !== 'ok') return begun;
    if (files.some((f) => f.kind === 'image') && !(await modelTakesImages(trx, begun.model.idllm))) {
      throw new BadRequestError(
        `${begun.model.txshortname} does not take images: an administrator has not marked it as a vision model. Remove the images, or pick a model that takes them.`,
      );
    }
    await insertAttachments(trx, begun.messageId, files);
    return begun;
  });
}

export type TurnWithFiles = EarlierTurn & { files: ModelFile[] };

/**
 * The conversation begin_answer returned, each prompt with its files, and the answered prompt's files. begin_answer's
 * history is the chat's prompts before `messageId` in order; filesForModel lists the same prompts (plus the answered
 * one): nothing can change them in between, as an answer is now in flight in this chat (edits and new prompts wait
 * with 409) and a deleted chat stops the answer anyway. Should the lists still differ, earlier turns go without files.
 */
export async function conversationWithFiles(
  db: Db,
  begun: { history: EarlierTurn[]; messageId: number },
  input: { chatId: number; modelId: number; maxChars: number },
): Promise<{ earlier: TurnWithFiles[]; promptFiles: ModelFile[]; vision: boolean }> {
  const { vision, messages, files } = await filesForModel(db, { ...input, messageId: begun.messageId });
  const aligned = messages === begun.history.length + 1;
  const byPosition: ModelFile[][] = Array.from({ length: messages }, () => []);
  for (const f of files) byPosition[f.position]?.push(f.file);
  const promptFiles = files.filter((f) => f.messageId === begun.messageId).map((f) => f.file);
  const earlier = begun.history.map((turn, i) => ({ ...turn, files: aligned ? (byPosition[i] ?? []) : [] }));
  return { earlier, promptFiles, vision };
}
