import { BadRequestError } from './errors.ts';

export const NUL_MESSAGE = 'The request contains a NUL character (U+0000), which cannot be stored. Remove it and send the request again.';
export const LONE_SURROGATE_MESSAGE = 'The request contains text that is not valid Unicode (a lone surrogate). Check what was sent and try again.';

/**
 * Text we can store as it was sent. PostgreSQL's `text` refuses U+0000 (the statement fails, a 500 far from where
 * the input came in), and the drivers encode a lone UTF-16 surrogate as U+FFFD (the text silently changes). Both are
 * refused where input enters: the JSON and form parsers and the query string, so no handler ever sees them.
 */
export const isStorableText = (value: string): boolean => !value.includes('\u0000') && value.isWellFormed();

/** The same rule where a request brings the text: a 400 that says which of the two it broke. */
export function assertStorableText(value: string): void {
  if (!isStorableText(value)) throw new BadRequestError(value.includes('\u0000') ? NUL_MESSAGE : LONE_SURROGATE_MESSAGE);
}

/** Every string in a parsed JSON value, keys included. Iterative: the body limit allows nesting deep enough to overflow the stack. */
export function assertStorableJson(value: unknown): void {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') assertStorableText(next);
    else if (Array.isArray(next)) pending.push(...next);
    else if (next !== null && typeof next === 'object') {
      for (const [key, child] of Object.entries(next)) {
        assertStorableText(key);
        pending.push(child);
      }
    }
  }
}
