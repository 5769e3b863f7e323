import { z } from 'zod';
import { BadRequestError } from '../http/errors.ts';
import { parseBody } from '../http/validation.ts';
import { authenticationResponseSchema, registrationResponseSchema } from './passkey-ceremonies.ts';

/** A WebAuthn response as JSON text in the form's hidden `credential` field (web/passkeys.ts fills it). */
const CREDENTIAL_MAX_CHARS = 40_000;

const jsonField = <S extends z.ZodType>(schema: S) =>
  z
    .string({ error: 'The passkey answer is missing. Try again.' })
    .min(1, 'The passkey answer is missing. Try again.')
    .max(CREDENTIAL_MAX_CHARS, 'The passkey answer is too long.')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'The passkey answer is not JSON.' });
        return z.NEVER;
      }
    })
    .pipe(schema);

export const assertionFormSchema = z.object({ credential: jsonField(authenticationResponseSchema) });
export const registrationFormSchema = z.object({ credential: jsonField(registrationResponseSchema) });

/** The form's WebAuthn response, or a 400 naming what is wrong (never a 500 from a hand-made post). */
export function parseCredentialForm<S extends typeof assertionFormSchema | typeof registrationFormSchema>(schema: S, body: unknown): z.infer<S> {
  const form = parseBody(schema, body);
  if (!form.ok) throw new BadRequestError(form.errors.credential ?? 'The passkey answer is not valid.');
  return form.data as z.infer<S>;
}
