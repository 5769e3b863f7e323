import type { ApiKeySummary } from '../api/api-key-queries.ts';
import { apiKeyTable } from '../api/api-key-views.ts';
import { DISPLAY_NAME_MAX_UTF16 } from '../http/display-name.ts';
import { controlError } from '../views/form-errors.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import type { AuditRow } from './audit-queries.ts';
import { auditTable } from './audit-views.ts';
import type { SessionRow, UsageRow, UserDetail } from './user-detail-queries.ts';
import { confirmDeactivate, confirmDemote, postButton, secondFactors, who } from './users-views.ts';

const when = (d: Date | null): SafeHtml =>
  d === null
    ? html`<span class="text-body-secondary">never</span>`
    : html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')}</time>`;

/** A short, readable browser name from a User-Agent (the full string is in the title attribute). */
function browserName(ua: string | null): string {
  if (!ua) return 'unknown';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'other';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}

export interface UserDetailView {
  csrfToken: string;
  user: UserDetail;
  selfId: number;
  sessions: SessionRow[];
  usage: UsageRow[];
  audit: AuditRow[];
  /** Whether the TOTP reset exists (issue 10); until it does the page says so. */
  canReset2fa: boolean;
  /** A refused form of this page, shown beside the actions card or the sessions table. */
  refusal?: DetailRefusal;
  /** The user's API keys with their counts; null when API_KEYS is off. */
  apiKeys: ApiKeySummary[] | null;
}

export interface DetailRefusal {
  at: 'actions' | 'sessions';
  message: string;
}

function sessionsTable(v: UserDetailView): SafeHtml {
  const refused = controlError('sessions-error', v.refusal?.at === 'sessions' ? v.refusal.message : undefined);
  if (v.sessions.length === 0) return html`${refused}<p class="text-body-secondary">No active session.</p>`;
  const base = `/admin/users/${v.user.id}`;
  return html`${refused}<div class="table-responsive"><table class="table table-sm align-middle table-stack" data-sessions>
  <thead><tr><th scope="col">Device</th><th scope="col">IP</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col">Method</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${v.sessions.map(
    (s) => html`<tr>
    <td data-label="Device" title="${s.userAgent ?? ''}">${browserName(s.userAgent)}${s.pending ? html` <span class="badge text-bg-warning">2FA pending</span>` : ''}</td>
    <td data-label="IP">${s.ip ?? ''}</td><td data-label="Signed in" class="text-nowrap">${when(s.created)}</td><td data-label="Last seen" class="text-nowrap">${when(s.lastSeen)}</td><td data-label="Method">${s.method}</td>
    <td class="text-end"><form method="post" action="${base}/sessions/revoke" class="d-inline" data-confirm="Revoke this session of ${who(v.user)} (${browserName(s.userAgent)}${s.ip ? `, ${s.ip}` : ''})? That browser is signed out at once." data-confirm-button="Revoke">${csrfField(v.csrfToken)}<input type="hidden" name="session" value="${s.id}"><button class="btn btn-sm btn-outline-danger" type="submit">Revoke</button></form></td>
  </tr>`,
  )}</tbody></table></div>`;
}

function usageTable(rows: UsageRow[]): SafeHtml {
  if (rows.length === 0) return html`<p class="text-body-secondary">No prompt in the last 30 days.</p>`;
  return html`<table class="table table-sm w-auto" data-testid="user-usage"><thead><tr><th scope="col">Model</th><th scope="col">Source</th><th scope="col" class="text-end">Prompts</th><th scope="col" class="text-end">Answers</th><th scope="col" class="text-end">Tokens</th></tr></thead>
  <tbody>${rows.map(
    (r) =>
      html`<tr data-source="${r.source}"><td>${r.model}</td><td>${r.source === 'api' ? 'API' : 'Web'}</td><td class="text-end">${r.prompts}</td><td class="text-end">${r.answers}</td><td class="text-end">${Number(r.tokens).toLocaleString('en-US')}</td></tr>`,
  )}</tbody></table>`;
}

function signInMethods(u: UserDetail): SafeHtml {
  const items: SafeHtml[] = [];
  if (u.hasPassword) items.push(html`<li>Password</li>`);
  for (const g of u.googleIdentities) items.push(html`<li>Google${g.email ? html` (${g.email})` : ''}, last used ${when(g.lastUsed)}</li>`);
  return items.length === 0 ? html`<span class="text-body-secondary">none yet</span>` : html`<ul class="mb-0 ps-3">${items}</ul>`;
}

export function userDetailPage(v: UserDetailView): SafeHtml {
  const u = v.user;
  const base = `/admin/users/${u.id}`;
  const self = u.id === v.selfId;
  const back = 'detail';
  return html`<nav aria-label="breadcrumb"><ol class="breadcrumb small"><li class="breadcrumb-item"><a href="/admin/users">Users</a></li><li class="breadcrumb-item active text-break" aria-current="page">${u.username}</li></ol></nav>
<h1 class="h4 mb-3 text-break">${u.username} ${u.isActive ? html`<span class="badge text-bg-success">active</span>` : html`<span class="badge text-bg-danger">deactivated</span>`}</h1>
<div class="row g-3">
  <div class="col-12 col-lg-6"><div class="card"><div class="card-body">
    <dl class="row mb-0 small">
      <dt class="col-4">E-mail</dt><dd class="col-8 text-break">${u.email}</dd>
      <dt class="col-4">Roles</dt><dd class="col-8">${u.roles.join(', ')}</dd>
      <dt class="col-4">Sign-in</dt><dd class="col-8">${signInMethods(u)}</dd>
      <dt class="col-4">2FA</dt><dd class="col-8">${secondFactors(u)}</dd>
      <dt class="col-4">Passkeys</dt><dd class="col-8" data-testid="passkey-count">${u.passkeys}</dd>
      <dt class="col-4">Created</dt><dd class="col-8">${when(u.created)}</dd>
      <dt class="col-4">Last sign-in</dt><dd class="col-8">${when(u.lastSignIn)}</dd>
      <dt class="col-4">Prompts sent</dt><dd class="col-8">${u.prompts}</dd>
    </dl>
  </div></div></div>
  <div class="col-12 col-lg-6"><div class="card"><div class="card-body d-flex flex-wrap gap-2 align-items-start">
    ${
      self
        ? html`<p class="small text-body-secondary w-100 mb-1">This is you: you cannot demote or deactivate yourself.</p>`
        : html`${u.isAdmin ? postButton(v.csrfToken, `${base}/demote`, 'Demote to User', 'btn-outline-warning', back, confirmDemote(u)) : postButton(v.csrfToken, `${base}/promote`, 'Promote to Admin', 'btn-outline-info', back)}
    ${u.isActive ? postButton(v.csrfToken, `${base}/deactivate`, 'Deactivate', 'btn-outline-danger', back, confirmDeactivate(u)) : postButton(v.csrfToken, `${base}/reactivate`, 'Reactivate', 'btn-outline-success', back)}`
    }
    ${postButton(v.csrfToken, `${base}/sign-out-everywhere`, 'Sign out everywhere', 'btn-outline-warning', back, {
      message: `Sign ${who(u)} out everywhere? Every browser of theirs is signed out at once.`,
      button: 'Sign out everywhere',
    })}
    ${
      v.canReset2fa
        ? u.is2faEnabled || u.passkeys > 0
          ? postButton(v.csrfToken, `${base}/reset-2fa`, 'Reset 2FA', 'btn-outline-danger', back, {
              message: `Reset two-factor authentication of ${who(u)}? Their authenticator, recovery codes and passkeys stop working and they are signed out everywhere.`,
              button: 'Reset 2FA',
            })
          : ''
        : html`<button class="btn btn-sm btn-outline-secondary" type="button" disabled>Reset 2FA</button><span class="small text-body-secondary">available when two-factor authentication lands</span>`
    }
    ${
      u.passkeys > 0
        ? postButton(v.csrfToken, `${base}/remove-passkeys`, `Remove passkeys (${u.passkeys})`, 'btn-outline-danger', back, {
            message: `Remove every passkey of ${who(u)}? They no longer sign in with them and are signed out everywhere.`,
            button: 'Remove passkeys',
          })
        : ''
    }
    ${u.isActive ? postButton(v.csrfToken, `${base}/reset-link`, 'Create a password reset link', 'btn-outline-light', back) : ''}
    ${v.refusal?.at === 'actions' ? html`<div class="w-100">${controlError('actions-error', v.refusal.message)}</div>` : ''}
  </div></div></div>
</div>
<h2 class="h5 mt-4">Sessions</h2>
${sessionsTable(v)}
${
  v.apiKeys === null
    ? ''
    : html`<h2 class="h5 mt-4">API keys</h2>
${apiKeyTable(v.apiKeys, v.csrfToken, (k) => `${base}/api-keys/${k.id}/revoke`)}`
}
<h2 class="h5 mt-4">Usage, last 30 days</h2>
${usageTable(v.usage)}
<h2 class="h5 mt-4">Audit history</h2>
${auditTable(v.audit)}
<p><a class="small" href="/admin/audit?target=${u.id}">All of this user's audit rows</a></p>`;
}

/** Shown once, right after creation: the token is not stored, so this page is the only place it appears. */
export function resetLinkPage(v: { user: UserDetail; link: string; validMinutes: number }): SafeHtml {
  return html`<h1 class="h4 mb-3 text-break">Password reset link for ${v.user.username}</h1>
<div class="alert alert-warning">Copy it now: it is shown only this once. It works once, for ${v.validMinutes} minutes; using it sets a new password and signs ${v.user.username} out everywhere. Creating another link voids this one.</div>
<div class="input-group mb-3"><input class="form-control font-monospace" id="reset-link" readonly value="${v.link}" aria-label="Reset link"></div>
<a class="btn btn-outline-light" href="/admin/users/${v.user.id}">Back to ${v.user.username}</a>`;
}

export interface NewUserValues {
  username?: string;
  email?: string;
  role?: string;
  signIn?: string;
}

export function newUserPage(v: { csrfToken: string; values: NewUserValues; errors: Partial<Record<string, string>> }): SafeHtml {
  const val = v.values;
  const checked = (cond: boolean) => (cond ? html` checked` : '');
  return html`<nav aria-label="breadcrumb"><ol class="breadcrumb small"><li class="breadcrumb-item"><a href="/admin/users">Users</a></li><li class="breadcrumb-item active" aria-current="page">Add a user</li></ol></nav>
<h1 class="h4 mb-3">Add a user</h1>
<div class="row"><div class="col-12 col-md-9 col-lg-6"><div class="card"><div class="card-body">
  ${formAlert(Object.keys(v.errors).length > 0 ? 'The account was not created: see the messages below.' : undefined)}
  <form method="post" action="/admin/users/new" novalidate>
    ${csrfField(v.csrfToken)}
    ${field({ name: 'username', label: 'Username', value: val.username, error: v.errors.username, maxlength: DISPLAY_NAME_MAX_UTF16, autocomplete: 'off' })}
    ${field({ name: 'email', label: 'E-mail', type: 'email', value: val.email, error: v.errors.email, maxlength: 255, autocomplete: 'off' })}
    <fieldset class="mb-3"><legend class="form-label fs-6">Role</legend>
      <div class="form-check"><input class="form-check-input" type="radio" name="role" id="f-role-user" value="user"${checked(val.role !== 'admin')}><label class="form-check-label" for="f-role-user">User</label></div>
      <div class="form-check"><input class="form-check-input" type="radio" name="role" id="f-role-admin" value="admin"${checked(val.role === 'admin')}><label class="form-check-label" for="f-role-admin">Admin</label></div>
    </fieldset>
    <fieldset class="mb-3"><legend class="form-label fs-6">Sign-in</legend>
      <div class="form-check"><input class="form-check-input" type="radio" name="signIn" id="f-signin-password" value="password"${checked(val.signIn !== 'google')}><label class="form-check-label" for="f-signin-password">Initial password (below)</label></div>
      <div class="form-check"><input class="form-check-input" type="radio" name="signIn" id="f-signin-google" value="google"${checked(val.signIn === 'google')}><label class="form-check-label" for="f-signin-google">Google only (no password: the first Google sign-in with this verified e-mail claims the account)</label></div>
    </fieldset>
    ${field({ name: 'password', label: 'Initial password', type: 'password', error: v.errors.password, required: false, autocomplete: 'new-password', maxlength: 128, help: 'At least 8 characters. Hand it over safely; or create a reset link from the user page instead.' })}
    <button class="btn btn-primary" type="submit">Create account</button>
    <a class="btn btn-outline-light" href="/admin/users">Cancel</a>
  </form>
</div></div></div></div>`;
}
