import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { card } from '../views/layout.ts';
import { CONFIRM_PATH } from './guards.ts';
import { PASSWORD_MAX_CHARS } from './passwords.ts';

/** What the account can prove itself with: a code when it has 2FA, else its password, else only a new sign-in. */
export type ProofWay = 'code' | 'password' | 'sign-in';

export interface ConfirmView {
  csrfToken: string;
  way: ProofWay;
  windowMinutes: number;
  next?: string;
  error?: string;
}

const action = (next?: string) => (next ? `${CONFIRM_PATH}?next=${encodeURIComponent(next)}` : CONFIRM_PATH);

/** The step-up's "confirm it's you" form (decision record 011). */
export function confirmPage(v: ConfirmView): SafeHtml {
  const why = html`<p>This change needs proof that it is really you, not someone who found your session open. It then
    stays confirmed for ${v.windowMinutes} minutes.</p>`;
  if (v.way === 'sign-in') {
    return card(
      "Confirm it's you",
      html`${why}${formAlert(v.error)}
  <p>Your account has no password and no two-factor authentication: a sign-in within the last ${v.windowMinutes} minutes is
    the proof. Sign in again (with Google) and you come back here.</p>
  <form method="post" action="${action(v.next)}">${csrfField(v.csrfToken)}
    <button class="btn btn-primary w-100" type="submit">Sign in again</button></form>`,
    );
  }
  const input =
    v.way === 'code'
      ? field({
          name: 'otp_code',
          label: 'Code from your authenticator app, or a recovery code',
          autocomplete: 'one-time-code',
          autofocus: true,
          maxlength: 64,
          error: v.error,
        })
      : field({
          name: 'password',
          label: 'Your password',
          type: 'password',
          autocomplete: 'current-password',
          autofocus: true,
          maxlength: PASSWORD_MAX_CHARS * 4,
          error: v.error,
        });
  return card(
    "Confirm it's you",
    html`${why}
  <form method="post" action="${action(v.next)}" novalidate>${csrfField(v.csrfToken)}
    ${input}
    <button class="btn btn-primary w-100" type="submit">Confirm</button>
  </form>
  <p class="mt-3 mb-0 text-center"><a href="${v.next ?? '/settings'}">Cancel</a></p>`,
  );
}
