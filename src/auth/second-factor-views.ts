import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { card } from '../views/layout.ts';

export interface SecondFactorView {
  csrfToken: string;
  next?: string;
  /** Show the recovery-code field instead of the authenticator code. */
  recovery: boolean;
  attemptsRemaining: number;
  error?: string;
  /** Seconds the step is locked for (too many wrong codes); the form is not shown meanwhile. */
  lockedForS?: number;
  /** The account has TOTP: the code form is shown. */
  totp: boolean;
  /** The account has a passkey: its button (passkey-views.ts), shown above the code form or alone. */
  passkey?: SafeHtml;
}

const withNext = (path: string, next: string | undefined, extra = '') => {
  const params = new URLSearchParams();
  if (next) params.set('next', next);
  if (extra) params.set(extra, '1');
  const q = params.toString();
  return q ? `${path}?${q}` : path;
};

export function minutesText(seconds: number): string {
  const m = Math.ceil(seconds / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

/** The second step of a sign-in: the authenticator's code, or one recovery code. */
export function secondFactorPage(v: SecondFactorView): SafeHtml {
  const startOver = html`<form method="post" action="/logout" class="mt-2 text-center">${csrfField(v.csrfToken)}<button class="btn btn-link p-0" type="submit">Start over</button></form>`;
  if (!v.totp) {
    // Passkeys only: there is no code to type and no recovery code (decision record 017: the way back is an admin's reset).
    return card(
      'Two-factor authentication',
      html`${formAlert(v.error)}${v.passkey ?? ''}
  <p class="small text-body-secondary mt-3 mb-0">Lost your passkey? Ask an administrator of this site to reset your two-factor authentication.</p>
  ${startOver}`,
      'Your password was right, but you are not signed in until you use your passkey.',
    );
  }
  if (v.lockedForS) {
    return card(
      'Two-factor authentication',
      html`<div class="alert alert-danger" role="alert">Too many wrong codes. This account's second step is locked; try again in ${minutesText(v.lockedForS)}.</div>${startOver}`,
    );
  }
  const codeField = v.recovery
    ? field({
        name: 'otp_code',
        label: 'Recovery code',
        autocomplete: 'off',
        autofocus: true,
        maxlength: 64,
        error: v.error,
        help: 'One of the codes you saved when you turned on two-factor authentication. Each works once.',
      })
    : field({
        name: 'otp_code',
        label: 'Code from your authenticator app',
        autocomplete: 'one-time-code',
        inputmode: 'numeric',
        autofocus: true,
        maxlength: 64,
        error: v.error,
      });
  const remaining =
    v.attemptsRemaining < 5
      ? html`<p class="small text-warning" data-testid="attempts-remaining">${v.attemptsRemaining} attempt${v.attemptsRemaining === 1 ? '' : 's'} left before this step is locked for 15 minutes.</p>`
      : html`<p class="small text-body-secondary" data-testid="attempts-remaining">${v.attemptsRemaining} attempts allowed.</p>`;
  const other = v.recovery
    ? html`<a href="${withNext('/login/2fa', v.next)}">Use your authenticator app</a>`
    : html`<a href="${withNext('/login/2fa', v.next, 'recovery')}">Use a recovery code</a>`;
  return card(
    'Two-factor authentication',
    html`${v.passkey ? html`${v.passkey}<div class="text-center text-body-secondary small my-3">or with a code</div>` : ''}<form method="post" action="${withNext('/login/2fa', v.next)}" novalidate>
    ${csrfField(v.csrfToken)}
    ${codeField}
    ${remaining}
    <button class="btn btn-primary w-100" type="submit">Verify</button>
  </form>
  <p class="mt-3 mb-0 text-center">${other}</p>
  ${startOver}`,
    `Your password was right, but you are not signed in until you ${v.recovery ? 'enter a recovery code' : `enter the 6-digit code your authenticator app shows${v.passkey ? ' or use your passkey' : ''}`}.`,
  );
}
