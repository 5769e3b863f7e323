import { DISPLAY_NAME_MAX_UTF16 } from '../http/display-name.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { card } from '../views/layout.ts';
import { PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS } from './passwords.ts';

/** Tells a first-time visitor what this site is before asking for anything. */
const TAGLINE = "Chat with your team's AI models.";

export type FieldErrors = Partial<Record<string, string>>;

export interface LoginView {
  csrfToken: string;
  localLogin: boolean;
  registrationOpen: boolean;
  googleEnabled: boolean;
  /** What the sign-in button calls the OpenID provider: "Google" (its own branded button), or OIDC_NAME. */
  providerName?: string;
  email?: string;
  error?: string;
  next?: string;
  /** The passkey button (and autofill offer): rendered by passkey-views.ts, which knows the relying party. */
  passkey?: SafeHtml;
}

/**
 * Google's own button (its branding guidelines: the four-colour "G" on the dark fill, "Sign in with Google"), the mark
 * served from our origin so the page loads nothing from Google and the CSP stays strict. Another provider gets a plain
 * button with its name (Google's mark is Google's only). `next` rides along.
 */
function googleButton(enabled: boolean, providerName = 'Google', next?: string): SafeHtml {
  if (!enabled) return html``;
  const href = html`/login/google${next ? html`?next=${encodeURIComponent(next)}` : ''}`;
  if (providerName !== 'Google') return html`<a class="btn btn-outline-primary w-100 mb-3" href="${href}">Sign in with ${providerName}</a>`;
  return html`<a class="gsi-button w-100 mb-3" href="${href}">
    <img class="gsi-button-icon" src="/static/google-g.svg" alt="" width="18" height="18"><span>Sign in with Google</span></a>`;
}

/**
 * The way back is a one-time link that an admin creates (the user's page, or `npm run user:reset-password` on the
 * server): there is no e-mail sending, so the page says whom to ask instead of offering a form that sends nothing.
 */
const FORGOT_PASSWORD = html`<p class="mt-3 mb-0 small text-center text-body-secondary">Forgot your password? Ask an administrator of this site for a password reset link: Parley sends no e-mail.</p>`;

export function loginPage(v: LoginView): SafeHtml {
  const form = v.localLogin
    ? html`<form method="post" action="/login${v.next ? html`?next=${encodeURIComponent(v.next)}` : ''}" novalidate>
    ${csrfField(v.csrfToken)}
    ${field({
      name: 'email',
      label: 'E-mail',
      type: 'email',
      value: v.email,
      // `webauthn`: the browser's autofill also offers this site's passkeys (conditional mediation, web/passkeys.ts).
      autocomplete: v.passkey ? 'username webauthn' : 'username',
      autofocus: !v.email,
      maxlength: 254,
    })}
    ${field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', autofocus: Boolean(v.email), maxlength: PASSWORD_MAX_CHARS })}
    <button class="btn btn-primary w-100" type="submit">Sign in</button>
  </form>
  ${FORGOT_PASSWORD}
  ${v.registrationOpen ? html`<p class="mt-3 mb-0 text-center text-body-secondary">No account yet? <a href="/register">Create one</a></p>` : ''}`
    : html`${v.googleEnabled ? '' : html`<p class="mb-0">Password sign-in is turned off on this server and no other sign-in method is configured. Ask your administrator.</p>`}`;
  return card(
    'Sign in',
    html`${formAlert(v.error)}${v.passkey ? html`<div class="mb-3">${v.passkey}</div>` : ''}${googleButton(v.googleEnabled, v.providerName, v.next)}${(v.googleEnabled || v.passkey) && v.localLogin ? html`<div class="text-center text-body-secondary small mb-3">or with your e-mail</div>` : ''}${form}`,
    TAGLINE,
  );
}

export interface RegisterView {
  csrfToken: string;
  googleEnabled: boolean;
  providerName?: string;
  values?: { username?: string; email?: string };
  errors?: FieldErrors;
  error?: string;
}

export function registerPage(v: RegisterView): SafeHtml {
  const e = v.errors ?? {};
  return card(
    'Create your account',
    html`${formAlert(v.error)}${googleButton(v.googleEnabled, v.providerName)}${v.googleEnabled ? html`<div class="text-center text-body-secondary small mb-3">or with your e-mail</div>` : ''}
  <form method="post" action="/register" novalidate>
    ${csrfField(v.csrfToken)}
    ${field({ name: 'username', label: 'Name', value: v.values?.username, error: e.username, autocomplete: 'name', autofocus: true, maxlength: DISPLAY_NAME_MAX_UTF16 })}
    ${field({ name: 'email', label: 'E-mail', type: 'email', value: v.values?.email, error: e.email, autocomplete: 'email', maxlength: 254 })}
    ${field({
      name: 'password',
      label: 'Password',
      type: 'password',
      error: e.password,
      autocomplete: 'new-password',
      minlength: PASSWORD_MIN_CHARS,
      maxlength: PASSWORD_MAX_CHARS,
      help: `${PASSWORD_MIN_CHARS} to ${PASSWORD_MAX_CHARS} characters. A passphrase of a few words is easiest to remember.`,
    })}
    <button class="btn btn-primary w-100" type="submit">Create account</button>
  </form>
  <p class="mt-3 mb-0 text-center text-body-secondary">Already registered? <a href="/login">Sign in</a></p>`,
    TAGLINE,
  );
}

export function registrationClosedPage(): SafeHtml {
  return card(
    'Registration is closed',
    html`<p>Accounts on this server are created by its administrators.</p><a class="btn btn-primary w-100" href="/login">Sign in</a>`,
  );
}
