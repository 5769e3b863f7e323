import { minutesText } from '../auth/second-factor-views.ts';
import { RECOVERY_CODES_LOW } from '../auth/totp-queries.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

export interface TwoFactorView {
  csrfToken: string;
  appName: string;
  enabled: boolean;
  recoveryCodesLeft: number;
  /** An enrolment waiting for its first code: the secret, grouped for typing (shown only until it is confirmed). */
  pendingSecret?: string;
  /** Fresh recovery codes, shown this once. */
  newCodes?: string[];
  error?: string;
  attemptsRemaining: number;
  lockedForS?: number;
  /** Set when the session has no recent proof: setting up 2FA first asks to confirm it's you (for this many minutes). */
  stepUpMinutes?: number;
}

const proofField = (error?: string) =>
  field({
    name: 'otp_code',
    label: 'Current code from your authenticator, or a recovery code',
    autocomplete: 'one-time-code',
    maxlength: 64,
    error,
    help: 'Changing two-factor authentication needs proof that you still have it.',
  });

function codesSection(v: TwoFactorView, codes: string[]): SafeHtml {
  const text = `${v.appName} recovery codes\nEach code works once.\n\n${codes.join('\n')}\n`;
  return html`<div class="alert alert-warning" role="alert">Save these recovery codes now: they are shown only this once. Each signs you in once if you lose your authenticator.</div>
  <pre class="border rounded p-3 fs-5" id="recovery-codes" data-testid="recovery-codes">${codes.join('\n')}</pre>
  <div class="d-flex gap-2 mb-3">
    <a class="btn btn-outline-primary" download="${v.appName.toLowerCase()}-recovery-codes.txt" href="data:text/plain;charset=utf-8,${encodeURIComponent(text)}">Download as text</a>
    <button class="btn btn-outline-primary" type="button" data-copy-target="recovery-codes" hidden>Copy</button>
  </div>
  <a class="btn btn-primary" href="/settings/2fa">I have saved them</a>`;
}

function enrolSection(v: TwoFactorView, secret: string): SafeHtml {
  return html`<ol class="mb-3">
    <li>Scan this QR code with your authenticator app (Google Authenticator, Aegis, 1Password…):
      <div class="my-3"><img src="/2fa/qrcode.png" alt="QR code of your new two-factor secret" width="220" height="220" class="bg-white p-2 rounded" data-testid="totp-qr"></div>
      or type this key into it: <code class="fs-6" data-testid="totp-secret">${secret}</code></li>
    <li>Enter the 6-digit code it shows.</li>
  </ol>
  <form method="post" action="/settings/2fa" novalidate>
    ${csrfField(v.csrfToken)}<input type="hidden" name="action" value="confirm">
    ${field({ name: 'otp_code', label: 'Code', autocomplete: 'one-time-code', inputmode: 'numeric', autofocus: true, maxlength: 16, error: v.error })}
    <button class="btn btn-primary" type="submit">Turn on two-factor authentication</button>
  </form>
  <p class="small text-body-secondary mt-3 mb-0">Until you confirm, nothing changes at sign-in${v.enabled ? ' and your current authenticator keeps working' : ''}. This setup expires after 15 minutes.</p>`;
}

function enabledSection(v: TwoFactorView): SafeHtml {
  const low = v.recoveryCodesLeft <= RECOVERY_CODES_LOW;
  const locked = v.lockedForS ? html`<div class="alert alert-danger" role="alert">Too many wrong codes. Try again in ${minutesText(v.lockedForS)}.</div>` : '';
  return html`<p><span class="badge text-bg-success">On</span> Signing in asks for a code from your authenticator app.</p>
  <p class="${low ? 'text-warning' : ''}" data-testid="recovery-left">${v.recoveryCodesLeft} recovery code${v.recoveryCodesLeft === 1 ? '' : 's'} left.${low ? ' Make new ones soon.' : ''}</p>
  ${locked}
  <form method="post" action="/settings/2fa" novalidate>
    ${csrfField(v.csrfToken)}
    ${proofField(v.error)}
    ${v.attemptsRemaining < 5 ? html`<p class="small text-warning">${v.attemptsRemaining} attempts left before changes are locked for 15 minutes.</p>` : ''}
    <div class="d-flex flex-wrap gap-2">
      <button class="btn btn-outline-primary" type="submit" name="action" value="regenerate">New recovery codes</button>
      <button class="btn btn-outline-primary" type="submit" name="action" value="generate">Set up a new authenticator</button>
      <button class="btn btn-outline-danger" type="submit" name="action" value="disable">Turn off</button>
    </div>
  </form>`;
}

export function twoFactorPage(v: TwoFactorView): SafeHtml {
  let body: SafeHtml;
  if (v.newCodes) body = codesSection(v, v.newCodes);
  else if (v.pendingSecret) body = enrolSection(v, v.pendingSecret);
  else if (v.enabled) body = enabledSection(v);
  else
    body = html`${formAlert(v.error)}<p><span class="badge text-bg-secondary">Off</span> With two-factor authentication, signing in also asks for a code from an app on your phone, so a stolen password is not enough.</p>
  <form method="post" action="/settings/2fa">${csrfField(v.csrfToken)}<input type="hidden" name="action" value="generate"><button class="btn btn-primary" type="submit">Set up two-factor authentication</button></form>
  <p class="small mt-3 mb-0">A <a href="/settings/passkeys">passkey</a> is a second factor too, and cannot be phished.</p>
  ${v.stepUpMinutes ? html`<p class="small text-body-secondary mt-3 mb-0" data-testid="step-up-note">You will be asked to confirm it's you first (your password, or a new sign-in for an account without one); that holds for ${v.stepUpMinutes} minutes.</p>` : ''}`;
  return html`<div class="row justify-content-center"><div class="col-lg-7">
  <p><a href="/settings">← Settings</a></p>
  <h1 class="h3 mb-4">Two-factor authentication</h1>
  ${body}
</div></div>`;
}
