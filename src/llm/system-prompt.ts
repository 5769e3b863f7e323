import { z } from 'zod';

/**
 * A system prompt, the admin's for a model or a user's for a chat: at most this many characters each. Both are sent
 * with every prompt and count toward MAX_HISTORY_CHARS (48,000 by default), so two full ones leave two thirds of it
 * to the conversation.
 */
export const SYSTEM_PROMPT_MAX_CHARS = 8_000;

// Line breaks and tabs are what instructions are written with; other control characters come from broken encodings.
const STRAY_CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * Parses a system prompt as typed: surrounding blank space is dropped, and an empty one means "none" (null), so
 * clearing the field removes it (as null does, the API's way).
 */
export function systemPromptSchema(label: string) {
  return z
    .string({ error: `${label} must be text.` })
    .max(SYSTEM_PROMPT_MAX_CHARS, `${label} is too long: at most ${SYSTEM_PROMPT_MAX_CHARS.toLocaleString('en')} characters.`)
    .refine((v) => !STRAY_CONTROLS.test(v), `${label} contains control characters that are not allowed.`)
    .nullable()
    .transform((v) => v?.trim() || null);
}
