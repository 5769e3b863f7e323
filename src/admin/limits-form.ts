import { z } from 'zod';
import { LIMIT_LABELS, LIMIT_NAMES, type Limits } from '../groups/usage-limits.ts';
import { csrfField } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

/** The largest limit a form takes: prompts fit PostgreSQL's integer, tokens its bigint with room (a quadrillion). */
const MAX: Record<keyof Limits, number> = { prompts_per_day: 2_147_483_647, tokens_per_day: 1e15, tokens_per_month: 1e15 };

const limitField = (name: keyof Limits) =>
  z
    .string({ error: `${LIMIT_LABELS[name]} must be given once, as a number.` })
    .trim()
    .optional()
    .transform((v) => (v === undefined || v === '' ? null : v))
    .pipe(
      z
        .string()
        .regex(/^\d{1,16}$/, `${LIMIT_LABELS[name]}: enter a whole number, or leave it empty for no limit.`)
        .transform(Number)
        .pipe(z.number().max(MAX[name], `${LIMIT_LABELS[name]}: at most ${MAX[name].toLocaleString('en-US')}.`))
        .nullable(),
    );

/** `prompts_per_day`, `tokens_per_day`, `tokens_per_month`: a whole number each, empty = not set (unlimited). */
export const limitsSchema = z.object({
  prompts_per_day: limitField('prompts_per_day'),
  tokens_per_day: limitField('tokens_per_day'),
  tokens_per_month: limitField('tokens_per_month'),
});

/** "20 prompts a day, 50,000 tokens a month" or "no limits". */
export function limitsSummary(limits: Limits): string {
  const parts = LIMIT_NAMES.filter((n) => limits[n] !== null).map((n) => `${LIMIT_LABELS[n].toLowerCase()}: ${(limits[n] ?? 0).toLocaleString('en-US')}`);
  return parts.length === 0 ? 'no limits' : parts.join(', ');
}

/** The three fields with their values (or what was typed) and errors, posting to `action`. */
export function limitsForm(o: {
  action: string;
  csrfToken: string;
  values: Partial<Record<keyof Limits, string | number | null>>;
  errors?: Partial<Record<string, string>>;
  help: string;
}): SafeHtml {
  const errors = o.errors ?? {};
  return html`<form method="post" action="${o.action}" novalidate class="limits-form">
  ${csrfField(o.csrfToken)}
  <p class="small text-body-secondary">${o.help}</p>
  <div class="row g-2">${LIMIT_NAMES.map((name) => {
    const id = `f-${name}`;
    const error = errors[name];
    const value = o.values[name];
    return html`<div class="col-12 col-md-4"><label class="form-label small" for="${id}">${LIMIT_LABELS[name]}</label>
    <input class="form-control form-control-sm${error ? ' is-invalid' : ''}" id="${id}" name="${name}" inputmode="numeric" placeholder="no limit"
      value="${value === null || value === undefined ? '' : String(value)}"${error ? html` aria-describedby="${id}-error"` : ''}>
    ${error ? html`<div class="invalid-feedback" id="${id}-error">${error}</div>` : ''}</div>`;
  })}</div>
  <button class="btn btn-sm btn-primary mt-2" type="submit">Save limits</button>
</form>`;
}
