import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BadRequestError, HttpError } from '../http/errors.ts';
import { assertStorableText } from '../http/storable-text.ts';
import { parseJsonOrThrow } from '../http/validation.ts';
import type { UploadedFile } from './attachment-checks.ts';
import { formatBytes, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL_BYTES, MAX_IMAGE_BYTES } from './attachment-rules.ts';

/**
 * Two ways to send files with a prompt (docs/decisions/021-attachments.md): multipart/form-data (the page: fields
 * `content` and `attachments`, one per file, streamed with upload progress), or JSON with each file base64-encoded
 * (`"attachments": [{ "name": "…", "data": "…" }]`, for scripts). Either way the files are only read here; every
 * rule about them is checked by checkAttachments.
 */
export const FILE_FIELD = 'attachments';

/** Base64 of the largest file, with room for padding. */
const MAX_BASE64_CHARS = Math.ceil(MAX_IMAGE_BYTES / 3) * 4;
export const attachmentsJson = z
  .array(
    z.strictObject({
      name: z.string().min(1, 'A file needs a name').max(1000),
      data: z
        .string()
        .max(MAX_BASE64_CHARS, `A file is too large: at most ${formatBytes(MAX_IMAGE_BYTES)}.`)
        .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'A file’s data must be base64.'),
    }),
  )
  .max(MAX_ATTACHMENTS, `Too many files: at most ${MAX_ATTACHMENTS} with one message.`);

/** The JSON body a prompt with base64 files may take: the total, plus the prompt and the JSON around them. */
export function promptBodyLimitBytes(maxPromptChars: number): number {
  return Math.ceil(MAX_ATTACHMENTS_TOTAL_BYTES / 3) * 4 + (MAX_ATTACHMENTS + 1) * 2048 + maxPromptChars * 6 + 4096;
}

/** multipart/form-data for this plugin's routes only (another slice registers its own, with its own limits). */
export async function acceptFileUploads(app: FastifyInstance, maxPromptChars: number): Promise<void> {
  await app.register(multipart, {
    limits: {
      // One more than allowed, so that "too many" and "too large" are ours to say (checkAttachments), not busboy's.
      files: MAX_ATTACHMENTS + 1,
      fileSize: MAX_IMAGE_BYTES + 1,
      fields: 4,
      fieldSize: maxPromptChars * 4 + 1024,
      parts: MAX_ATTACHMENTS + 5,
    },
  });
}

/**
 * The prompt and its files from a multipart request. Files are read one at a time, and reading stops as soon as
 * their total passes MAX_ATTACHMENTS_TOTAL_BYTES: a request holds at most that plus one file in memory.
 */
export async function readMultipartPrompt(req: FastifyRequest): Promise<{ content: unknown; files: UploadedFile[] }> {
  const files: UploadedFile[] = [];
  let content: unknown;
  let total = 0;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== FILE_FIELD) throw new BadRequestError(`Unknown file field ${part.fieldname}: send files as ${FILE_FIELD}.`);
        if (files.length >= MAX_ATTACHMENTS) throw new BadRequestError(`Too many files: at most ${MAX_ATTACHMENTS} with one message.`);
        const bytes = await part.toBuffer().catch((err: { code?: string }) => {
          if (err.code === 'FST_REQ_FILE_TOO_LARGE')
            throw new BadRequestError(`${part.filename} is too large: files may have at most ${formatBytes(MAX_IMAGE_BYTES)}.`);
          throw err;
        });
        total += bytes.length;
        if (total > MAX_ATTACHMENTS_TOTAL_BYTES)
          throw new BadRequestError(`The files are too large together: at most ${formatBytes(MAX_ATTACHMENTS_TOTAL_BYTES)} with one message.`);
        files.push({ name: part.filename, bytes });
      } else if (part.fieldname === 'content' && content === undefined) {
        if (part.valueTruncated) throw new BadRequestError('The message is too long.');
        assertStorableText(String(part.value)); // as the JSON parser does for every string (storable-text.ts)
        content = part.value;
      } else {
        throw new BadRequestError(`Unexpected form field ${part.fieldname}.`);
      }
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'FST_FILES_LIMIT') throw new BadRequestError(`Too many files: at most ${MAX_ATTACHMENTS} with one message.`);
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') throw new BadRequestError('Too many form fields.');
    if (err instanceof HttpError) throw err;
    // Anything else is the body itself (busboy: a malformed part, a cut-off form): the client's fault, not ours.
    throw new BadRequestError('The upload could not be read. Try again.');
  }
  return { content, files };
}

/** A prompt and its files, from either form; `schema` is the route's prompt schema (content, attachments). */
export async function readPromptWithFiles<S extends z.ZodType<{ content: string; attachments?: Array<{ name: string; data: string }> | undefined }>>(
  req: FastifyRequest,
  schema: S,
): Promise<{ content: string; files: UploadedFile[] }> {
  if (req.isMultipart()) {
    const { content, files } = await readMultipartPrompt(req);
    return { content: parseJsonOrThrow(schema, { content }).content, files };
  }
  const { content, attachments = [] } = parseJsonOrThrow(schema, req.body);
  return { content, files: attachments.map((a) => ({ name: a.name, bytes: Buffer.from(a.data, 'base64') })) };
}
