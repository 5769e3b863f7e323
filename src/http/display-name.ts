import { z } from 'zod';

/**
 * The one rule for names people show to others (display names; titles others see can use it too). Every place a
 * name is set parses it here: registration, Settings, the admin's "Add a user", `npm run user:create`, and the name
 * a Google (OIDC) claim brings.
 *
 * Bidi controls are refused: U+202E (right-to-left override) and its kin reorder what follows, so "Bob‮nimda" can
 * be made to read as another user's name in the user list and the audit log. Unicode's embedding, override and
 * isolate controls, the LRM/RLM marks and the Arabic letter mark: a name never needs them (a right-to-left name is
 * shown right to left by the bidi algorithm itself).
 *
 * Length is counted in grapheme clusters, the characters people see ("é" written e + U+0301 is one, a family emoji
 * is one), not UTF-16 units. The column (txusername VARCHAR(100)) counts code points, so a name heavy with
 * combining marks or joined emoji is also held to 100 code points: it is stored as typed or refused, never cut.
 */
export const DISPLAY_NAME_MAX_GRAPHEMES = 50;
export const DISPLAY_NAME_MAX_CODE_POINTS = 100;
/**
 * UTF-16 units: the most the segmenter is given (anything longer is too long whatever it holds), and the inputs'
 * `maxlength`, which browsers count in UTF-16 units (a `maxlength="50"` would stop 50 emoji at 25).
 */
export const DISPLAY_NAME_MAX_UTF16 = DISPLAY_NAME_MAX_CODE_POINTS * 2;

/** U+202A–U+202E embeddings and overrides, U+2066–U+2069 isolates, U+200E/U+200F marks, U+061C Arabic letter mark. */
export const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
/** C0 and C1 controls, DEL, and U+FFFD (what a broken encoding leaves). */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\ufffd]/;

/**
 * The bidi rule alone, for other text shown to other people that has a length rule of its own (model names every
 * user picks from, chat titles an admin reads in the statistics).
 */
export function bidiProblem(text: string, label: string): string | undefined {
  if (!BIDI_CONTROLS.test(text)) return undefined;
  return `${label} contains invisible text-direction characters (such as U+202E), which can make it look like another name.`;
}

const BIDI_CONTROLS_ALL = new RegExp(BIDI_CONTROLS.source, 'g');
/** Text we derive from what a person wrote (a chat's title from its first prompt) drops them instead of refusing. */
export const withoutBidiControls = (text: string): string => text.replace(BIDI_CONTROLS_ALL, '');

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** How many characters a person sees in `text`. */
export function graphemeCount(text: string): number {
  let n = 0;
  for (const _ of graphemes.segment(text)) n++;
  return n;
}

/** Why `name` (already trimmed) cannot be a display name, or undefined when it can. `label` starts the message. */
export function displayNameProblem(name: string, label = 'Name'): string | undefined {
  if (name.length === 0) return `Enter a ${label.toLowerCase()}.`;
  const bidi = bidiProblem(name, label);
  if (bidi) return bidi;
  if (CONTROLS.test(name) || !name.isWellFormed()) return `${label} contains characters that are not allowed.`;
  if (name.length > DISPLAY_NAME_MAX_UTF16 || [...name].length > DISPLAY_NAME_MAX_CODE_POINTS || graphemeCount(name) > DISPLAY_NAME_MAX_GRAPHEMES) {
    return `${label} is too long (at most ${DISPLAY_NAME_MAX_GRAPHEMES} characters).`;
  }
  return undefined;
}

/** A form field (or CLI option) holding a display name: one string, trimmed, then the rule above. */
export const displayNameField = (label = 'Name', emptyMessage?: string) =>
  z
    // A repeated form field arrives as an array (form-parser.ts): say so rather than "required".
    .string({ error: (issue) => (issue.input === undefined ? `${label} is required.` : `${label} must be given once, as text.`) })
    .transform((v) => v.trim())
    .superRefine((v, ctx) => {
      const problem = v.length === 0 && emptyMessage ? emptyMessage : displayNameProblem(v, label);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

/**
 * A name someone else chose for us (an identity provider's `name` claim): used when it passes the rule, else
 * undefined so the caller falls back to another name. A bad claim never refuses the sign-in.
 */
export function displayNameFromClaim(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const name = value.trim();
  return displayNameProblem(name) ? undefined : name;
}
