import { z } from 'zod';
import { BadRequestError, NotFoundError } from './errors.ts';

export type ParseResult<T> = { ok: true; data: T } | { ok: false; errors: Partial<Record<string, string>>; message: string };

/**
 * Parses a form or JSON body with one zod schema. Forms strip unknown fields (browsers add submit buttons
 * and `_csrf`); the first message per field is kept so the form can show it beside the field.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): ParseResult<z.infer<S>> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return { ok: true, data: parsed.data };
  const errors: Partial<Record<string, string>> = {};
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? '_');
    errors[key] ??= issue.message;
  }
  const first = parsed.error.issues[0];
  return { ok: false, errors, message: `${first?.path.join('.') || 'body'}: ${first?.message ?? 'invalid'}` };
}

/** For JSON APIs: invalid input is a 400 with the reason, never a 500. */
export function parseJsonOrThrow<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = parseBody(schema, body);
  if (!result.ok) throw new BadRequestError(result.message);
  return result.data;
}

/** A form value: one string (a repeated field is an error, not an array we silently join). */
export const formString = (max: number, label: string) =>
  z
    // A repeated form field arrives as an array (see form-parser.ts): say so rather than "required".
    .string({ error: (issue) => (issue.input === undefined ? `${label} is required.` : `${label} must be given once, as text.`) })
    .max(max, `${label} is too long (at most ${max} characters).`)
    // Control characters never belong in a name or address; they mostly come from broken encodings.
    .refine((v) => !/[\u0000-\u001f\u007f\ufffd]/.test(v), `${label} contains characters that are not allowed.`);

/** Ids are PostgreSQL `integer`s. */
export const DB_ID_MAX = 2_147_483_647;
export const dbId = z.number().int().positive().max(DB_ID_MAX);
const pathSegmentId = z
  .string()
  .regex(/^[1-9]\d{0,9}$/)
  .transform(Number)
  .pipe(z.number().max(DB_ID_MAX));

/** The id from the URL path, or null when it is not one (for code that runs before the handler's pathId). */
export function pathIdOrNull(params: unknown, key = 'id'): number | null {
  const parsed = pathSegmentId.safeParse((params as Record<string, unknown> | undefined)?.[key]);
  return parsed.success ? parsed.data : null;
}

/** An id from the URL path (`/chat/:id`); anything that is not one is a page that does not exist (404), not a 400. */
export function pathId(params: unknown, key = 'id', notFoundMessage?: string): number {
  const id = pathIdOrNull(params, key);
  if (id === null) throw new NotFoundError(notFoundMessage);
  return id;
}

/**
 * A repeated form field of ids (`ids`, `user_ids`): one value or several, each an id, at least one, at most 500.
 * A form with nothing ticked sends no field at all; a JSON body can send `[]` (was an `IN ()` syntax error: 500).
 */
export const formIdList = (noun: string, max = 500) =>
  z
    .union([z.string(), z.array(z.string()).max(max, `Select at most ${max} ${noun}s at once.`)], { error: `Select at least one ${noun}.` })
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .pipe(
      z
        .array(
          z
            .string()
            .regex(/^[1-9]\d{0,9}$/, `A selected ${noun} id is not valid.`)
            .transform(Number)
            .pipe(z.number().max(DB_ID_MAX)),
        )
        .min(1, `Select at least one ${noun}.`),
    );
