import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { card } from '../views/layout.ts';
import { CONFIRM_PATH } from './guards.ts';
import { PASSWORD_MAX_CHARS } from './passwords.ts';

/**
 * What the account can prove itself with: a code when it has TOTP, else a passkey when it has one (a password alone
 * must not stand in for a second factor), else its password, else only a new sign-in. A passkey is offered beside a code.
 */
export type ProofWay = 'code' | 'passkey' | 'password' | 'sign-in';

export interface ConfirmView {
  csrfToken: string;
  way: ProofWay;
  windowMinutes: number;
  next?: string;
  error?: string;
  /** The passkey button (passkey-views.ts) when the account has one. */
  passkey?: SafeHtml;
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
  if (v.way === 'passkey') {
    return card(
      "Confirm it's you",
      html`${why}${formAlert(v.error)}${v.passkey ?? ''}
  <p class="mt-3 mb-0 text-center"><a href="${v.next ?? '/settings'}">Cancel</a></p>`,
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
    html`${why}${v.passkey ? html`${v.passkey}<div class="text-center text-body-secondary small my-3">or with a code</div>` : ''}
  <form method="post" action="${action(v.next)}" novalidate>${csrfField(v.csrfToken)}
    ${input}
    <button class="btn btn-primary w-100" type="submit">Confirm</button>
  </form>
  <p class="mt-3 mb-0 text-center"><a href="${v.next ?? '/settings'}">Cancel</a></p>`,
  );
}
