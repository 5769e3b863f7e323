import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { type ApiKeySummary, KEY_EXPIRY_MAX_DAYS, KEY_NAME_MAX_CHARS } from './api-key-queries.ts';

const when = (d: Date | null, none = '—') =>
  d === null ? none : html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;

export type KeyState = 'active' | 'revoked' | 'expired';
export const keyState = (k: ApiKeySummary, now = new Date()): KeyState => (k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= now ? 'expired' : 'active');

const badge: Record<KeyState, SafeHtml> = {
  active: html`<span class="badge text-bg-success">Active</span>`,
  revoked: html`<span class="badge text-bg-secondary">Revoked</span>`,
  expired: html`<span class="badge text-bg-warning">Expired</span>`,
};

/**
 * The keys as a table (one's own page, and an admin's view of a user): name, prefix, dates, requests, tokens, and a
 * Revoke button posting to `revokeAction(key)` while the key is active.
 */
export function apiKeyTable(keys: ApiKeySummary[], csrfToken: string, revokeAction: (k: ApiKeySummary) => string): SafeHtml {
  if (keys.length === 0) return html`<p class="text-body-secondary mb-0" data-testid="no-api-keys">No API keys yet.</p>`;
  const rows = keys.map((k) => {
    const state = keyState(k);
    return html`<tr data-testid="api-key-row">
      <td data-label="Name"><span class="fw-semibold text-break">${k.name}</span> <code class="small">${k.prefix}…</code></td>
      <td data-label="State">${badge[state]}</td>
      <td data-label="Created" class="small">${when(k.createdAt)}</td>
      <td data-label="Last used" class="small">${when(k.lastUsedAt, 'never')}</td>
      <td data-label="Expires" class="small">${k.revokedAt ? html`revoked ${when(k.revokedAt)}` : when(k.expiresAt, 'never')}</td>
      <td data-label="Requests" class="text-end">${k.requests.toLocaleString('en')}</td>
      <td data-label="Tokens" class="text-end small">${(k.promptTokens + k.completionTokens).toLocaleString('en')}</td>
      <td class="text-end">${
        state === 'active'
          ? html`<form method="post" action="${revokeAction(k)}">${csrfField(csrfToken)}<button class="btn btn-outline-danger btn-sm" type="submit">Revoke</button></form>`
          : ''
      }</td></tr>`;
  });
  // table-stack (public/app.css): below 768 px each key is a card of "label value" lines, nothing off-screen.
  return html`<div class="table-responsive"><table class="table table-sm align-middle table-stack">
    <thead><tr><th>Name</th><th>State</th><th>Created</th><th>Last used</th><th>Expires</th><th class="text-end">Requests</th><th class="text-end">Tokens</th><th></th></tr></thead>
    <tbody>${rows}</tbody>
  </table></div>`;
}

export interface ApiKeysPageView {
  csrfToken: string;
  keys: ApiKeySummary[];
  publicUrl: string;
  /** Just created: shown once, here, and never again. */
  created?: { key: string; name: string };
  form?: { name: string; expires_in_days: string };
  errors?: Partial<Record<string, string>>;
  error?: string;
}

export function apiKeysPage(v: ApiKeysPageView): SafeHtml {
  const e = v.errors ?? {};
  const baseUrl = `${v.publicUrl.replace(/\/+$/, '')}/v1`;
  return html`<div class="row justify-content-center"><div class="col-lg-10">
  <p class="mb-2"><a href="/settings">← Settings</a></p>
  <h1 class="h3 mb-3">API keys</h1>
  <p class="text-body-secondary">Use Parley's models from your own programs and editors with any OpenAI-compatible client:
    base URL <code data-testid="api-base-url">${baseUrl}</code> and one of your keys. Every call is counted in your usage.</p>
  ${formAlert(v.error)}
  ${
    v.created
      ? html`<div class="alert alert-success" role="status" data-testid="new-api-key">
    <p class="mb-2">Your new key “${v.created.name}”. Copy it now: it is shown only this once.</p>
    <input class="form-control font-monospace" readonly value="${v.created.key}" aria-label="Your new API key" data-testid="new-api-key-value">
  </div>`
      : ''
  }
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Your keys</h2>
    ${apiKeyTable(v.keys, v.csrfToken, (k) => `/settings/api-keys/${k.id}/revoke`)}
  </div></section>
  <section class="card mb-4"><div class="card-body">
    <h2 class="h5 card-title">Create a key</h2>
    <p class="small text-body-secondary">You may be asked to confirm it is you first.</p>
    <form method="post" action="/settings/api-keys" novalidate>
      ${csrfField(v.csrfToken)}
      ${field({ name: 'name', label: 'Name', value: v.form?.name ?? '', error: e.name, maxlength: KEY_NAME_MAX_CHARS, help: 'What the key is for, e.g. “laptop notebook”.' })}
      ${field({
        name: 'expires_in_days',
        label: 'Expires after (days)',
        type: 'number',
        inputmode: 'numeric',
        value: v.form?.expires_in_days ?? '90',
        error: e.expires_in_days,
        required: false,
        help: `1 to ${KEY_EXPIRY_MAX_DAYS}; empty for a key that never expires.`,
      })}
      <button class="btn btn-primary" type="submit">Create key</button>
    </form>
  </div></section>
</div></div>`;
}
