import { HttpError } from './errors.ts';

export interface FormRefusal {
  status: number;
  message: string;
}

/** The refusals a form's own page can show again beside the control that was used (issue 16: no dead-end pages). */
const SHOWN_AGAIN = new Set([400, 404, 409]);

/**
 * What a refused form post says, when its page should be rendered again with the message beside the control: a 400,
 * 404 or 409 that a guard or query threw with a message we wrote. Anything else (403 "no longer an admin", 401, a
 * 5xx) is not the form's fault and keeps the error handler's answer: the caller rethrows it.
 */
export function formRefusal(err: unknown): FormRefusal | null {
  if (!(err instanceof HttpError) || !SHOWN_AGAIN.has(err.statusCode)) return null;
  return { status: err.statusCode, message: err.message };
}
