import type { LinkedIdentity } from '../auth/google-queries.ts';
import { PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS } from '../auth/passwords.ts';
import { DISPLAY_NAME_MAX_UTF16 } from '../http/display-name.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { type AttachmentStorage, attachmentStorageSection } from './attachment-storage.ts';
import type { OwnSession } from './settings-queries.ts';

export type FieldErrors = Partial<Record<string, string>>;

export interface SettingsView {
  csrfToken: string;
  username: string;
  email: string;
  hasPassword: boolean;
  /** Password sign-in is on, so an account without a password may set one. */
  canSetPassword: boolean;
  currentSessionId: string;
  sessions: OwnSession[];
  twoFactor: { enabled: boolean; recoveryCodesLeft: number };
  identities: LinkedIdentity[];
  /** The names of the groups one is in (model access and limits come with them). */
  groups?: string[];
  /** What one's files and images take (attachment-storage.ts). */
  attachmentStorage?: AttachmentStorage;
  /** API_KEYS: the card linking to one's API keys. */
  apiKeys: boolean;
  /** The chats' export and import card (src/chat/transfer-views.ts), handed over by app.ts. */
  transferSection?: SafeHtml;
  errors?: FieldErrors;
  /** A message about the whole page (e.g. too many wrong passwords). */
  error?: string;
}

const when = (d: Date) => html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;

/** "Firefox on Linux"-like enough: the user agent, shortened; people recognise their devices by it. */
function browserOf(userAgent: string | null): string {
  if (!userAgent) return 'Unknown browser';
  const ua = userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /Android/.test(ua)
      ? 'Android'
      : /iPhone|iPad/.test(ua)
        ? 'iOS'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : null;
  return browser && os ? `${browser} on ${os}` : ua.slice(0, 60);
}

function sessionsSection(v: SettingsView): SafeHtml {
  const rows = v.sessions.map(
    (s) => html`<tr data-testid="session-row">
      <td>${browserOf(s.userAgent)}${s.id === v.currentSessionId ? html` <span class="badge text-bg-success">This browser</span>` : ''}<div class="small text-body-secondary">${s.method === 'google' ? 'Google sign-in' : 'Password sign-in'}</div></td>
      <td>${s.ip ?? '—'}</td><td>${when(s.created)}</td><td>${when(s.lastSeen)}</td>
      <td class="text-end">${
        s.id === v.currentSessionId
          ? ''
          : html`<form method="post" action="/settings/sessions/revoke">${csrfField(v.csrfToken)}<input type="hidden" name="session" value="${s.id}"><button class="btn btn-outline-danger btn-sm" type="submit">Revoke</button></form>`
      }</td></tr>`,
  );
  return html`<section class="card mb-4"><div class="card-body">
  <h2 class="h5 card-title">Sessions</h2>
  <p class="text-body-secondary small">Where your account is signed in. Revoke any you do not recognise.</p>
  <div class="table-responsive"><table class="table table-sm align-middle">
    <thead><tr><th>Browser</th><th>IP address</th><th>Signed in</th><th>Last seen</th><th></th></tr></thead>
    <tbody>${rows}</tbody>
  </table></div>
  ${
    v.sessions.length > 1
      ? html`<form method="post" action="/settings/sessions/revoke-others">${csrfField(v.csrfToken)}<button class="btn btn-outline-danger" type="submit">Sign out everywhere else</button></form>`
      : ''
  }
</div></section>`;
}

function identitiesSection(v: SettingsView): SafeHtml {
  const rows = v.identities.map(
    (i) => html`<li class="list-group-item d-flex justify-content-between align-items-center" data-testid="identity">
      <div>Google${i.email ? html`: ${i.email}` : ''}<div class="small text-body-secondary">Linked ${when(i.createdAt)}${i.lastUsedAt ? html`, last used ${when(i.lastUsedAt)}` : ''}</div></div>
      ${
        v.hasPassword
          ? html`<form method="post" action="/settings/google/unlink">${csrfField(v.csrfToken)}<input type="hidden" name="issuer" value="${i.issuer}"><input type="hidden" name="subject" value="${i.subject}"><button class="btn btn-outline-danger btn-sm" type="submit">Unlink</button></form>`
          : html`<span class="small text-body-secondary">Your only way in</span>`
      }</li>`,
  );
  return html`<section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Google sign-in</h2>
    ${v.identities.length > 0 ? html`<ul class="list-group">${rows}</ul>` : html`<p class="mb-0 text-body-secondary">No Google account is linked.</p>`}
  </div></section>`;
}

/** The new-password field of both password forms (change, and a first password for a Google-only account). */
function newPasswordField(error: string | undefined): SafeHtml {
  return field({
    name: 'new_password',
    label: 'New password',
    type: 'password',
    error,
    autocomplete: 'new-password',
    maxlength: PASSWORD_MAX_CHARS,
    minlength: PASSWORD_MIN_CHARS,
    help: `At least ${PASSWORD_MIN_CHARS} characters. Your other sessions are signed out.`,
  });
}

export function settingsPage(v: SettingsView): SafeHtml {
  const e = v.errors ?? {};
  const twoFactor = v.twoFactor.enabled
    ? html`<p><span class="badge text-bg-success">On</span> ${v.twoFactor.recoveryCodesLeft} recovery codes left.</p>`
    : html`<p><span class="badge text-bg-secondary">Off</span> Protect your account with a code from an authenticator app.</p>`;
  return html`<div class="row justify-content-center"><div class="col-lg-9">
  <h1 class="h3 mb-4">Settings</h1>
  ${formAlert(v.error)}
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Profile</h2>
    <p class="text-body-secondary small">Signed in as ${v.email}.</p>
    <form method="post" action="/settings/profile" novalidate>
      ${csrfField(v.csrfToken)}
      ${field({ name: 'username', label: 'Display name', value: v.username, error: e.username, autocomplete: 'name', maxlength: DISPLAY_NAME_MAX_UTF16 })}
      <button class="btn btn-primary" type="submit">Save name</button>
    </form>
  </div></section>
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Password</h2>
    ${
      v.hasPassword
        ? html`<form method="post" action="/settings/password" novalidate>
      ${csrfField(v.csrfToken)}
      ${field({ name: 'current_password', label: 'Current password', type: 'password', error: e.current_password, autocomplete: 'current-password', maxlength: PASSWORD_MAX_CHARS })}
      ${newPasswordField(e.new_password)}
      <button class="btn btn-primary" type="submit">Change password</button>
    </form>`
        : v.canSetPassword
          ? html`<p>This account signs in with Google and has no password. Set one to sign in with your e-mail address too.</p>
    <form method="post" action="/settings/password/new" novalidate>
      ${csrfField(v.csrfToken)}
      ${newPasswordField(e.new_password)}
      <button class="btn btn-primary" type="submit">Set password</button>
    </form>`
          : html`<p class="mb-0">This account signs in with Google and has no password.</p>`
    }
  </div></section>
  ${sessionsSection(v)}
  ${identitiesSection(v)}
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Two-factor authentication</h2>
    ${twoFactor}
    <a class="btn btn-outline-primary" href="/settings/2fa">Manage two-factor authentication</a>
  </div></section>
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Passkeys</h2>
    <p class="text-body-secondary small">Sign in with your device's screen lock or a security key instead of a password; phishing-proof.</p>
    <a class="btn btn-outline-primary" href="/settings/passkeys">Manage passkeys</a>
  </div></section>
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Usage</h2>
    <p class="text-body-secondary small">Your prompts, answers and tokens by day and model, with a CSV, and your limits.</p>
    <p class="small" id="own-groups">${v.groups && v.groups.length > 0 ? html`Your groups: ${v.groups.join(', ')}.` : 'You are in no group.'}</p>
    <a class="btn btn-outline-primary" href="/settings/usage">See your usage</a>
  </div></section>
  ${attachmentStorageSection(v.attachmentStorage)}
  ${
    v.apiKeys
      ? html`<section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">API keys</h2>
    <p class="text-body-secondary small">Personal keys for the OpenAI-compatible API: use Parley's models from scripts and editors.</p>
    <a class="btn btn-outline-primary" href="/settings/api-keys">Manage API keys</a>
  </div></section>`
      : ''
  }
  ${v.transferSection ?? ''}
</div></div>`;
}
