import type { PasskeyListItem } from '../auth/passkey-queries.ts';
import { PASSKEY_NAME_MAX_CHARS, PASSKEYS_PER_ACCOUNT } from '../auth/passkey-queries.ts';
import type { RelyingParty } from '../config-webauthn.ts';
import { csrfField, field } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

export interface PasskeysView {
  csrfToken: string;
  relyingParty: RelyingParty;
  passkeys: PasskeyListItem[];
  /** The account also has TOTP (its recovery codes are then the way back). */
  totpEnabled: boolean;
  /** Set when the session has no recent proof: adding or removing first asks to confirm it's you. */
  stepUpMinutes?: number;
  nameError?: string;
  name?: string;
}

const when = (d: Date | null) => (d ? html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`never`);

function passkeyRow(v: PasskeysView, p: PasskeyListItem): SafeHtml {
  const kind = p.synced
    ? html`<span class="badge text-bg-info" title="Backed up by your platform and available on your other devices">synced</span>`
    : html`<span class="badge text-bg-secondary" title="Only on the device or security key that made it">this device only</span>`;
  return html`<li class="list-group-item" data-testid="passkey-row">
    <div class="d-flex flex-wrap justify-content-between align-items-start gap-2">
      <div class="text-break"><strong data-testid="passkey-name">${p.name}</strong> ${kind}
        <div class="small text-body-secondary">Added ${when(p.createdAt)} · last used ${when(p.lastUsedAt)}</div></div>
      <form method="post" action="/settings/passkeys/${p.id}/remove" data-confirm="Remove the passkey “${p.name}”? It no longer signs you in." data-confirm-button="Remove">
        ${csrfField(v.csrfToken)}<button class="btn btn-outline-danger btn-sm" type="submit" data-action="remove-passkey">Remove</button></form>
    </div>
    <form method="post" action="/settings/passkeys/${p.id}/rename" class="d-flex gap-2 mt-2">
      ${csrfField(v.csrfToken)}
      <label class="visually-hidden" for="rename-${p.id}">New name for ${p.name}</label>
      <input class="form-control form-control-sm" id="rename-${p.id}" name="passkey_name" value="${p.name}" maxlength="${PASSKEY_NAME_MAX_CHARS}" required>
      <button class="btn btn-outline-primary btn-sm" type="submit" data-action="rename-passkey">Rename</button>
    </form>
  </li>`;
}

function addSection(v: PasskeysView): SafeHtml {
  if (v.passkeys.length >= PASSKEYS_PER_ACCOUNT) {
    return html`<p class="text-body-secondary" data-testid="passkey-limit">You have ${PASSKEYS_PER_ACCOUNT} passkeys, the most an account may have. Remove one to add another.</p>`;
  }
  return html`<form method="post" action="/settings/passkeys" data-passkey-register data-options="/settings/passkeys/options" data-rp-id="${v.relyingParty.rpId}" data-origin="${v.relyingParty.origin}" novalidate>
    ${csrfField(v.csrfToken)}<input type="hidden" name="credential" value="">
    ${field({
      name: 'passkey_name',
      label: 'Name for the new passkey',
      value: v.name,
      autocomplete: 'off',
      maxlength: PASSKEY_NAME_MAX_CHARS,
      error: v.nameError,
      help: 'Where it lives, so you can tell them apart: “Work laptop”, “Phone”, “Blue key”.',
    })}
    <button class="btn btn-primary" type="submit" data-action="add-passkey">Add a passkey</button>
    <div class="small text-danger" data-passkey-status role="status" aria-live="polite"></div>
  </form>
  ${v.stepUpMinutes ? html`<p class="small text-body-secondary mt-3 mb-0" data-testid="step-up-note">Adding or removing a passkey first asks you to confirm it's you; that holds for ${v.stepUpMinutes} minutes.</p>` : ''}`;
}

/** Settings → Passkeys: the list (name, added, last used, synced or not), rename, remove, add; and the way back. */
export function passkeysPage(v: PasskeysView): SafeHtml {
  const list =
    v.passkeys.length === 0
      ? html`<p data-testid="no-passkeys">You have no passkeys yet.</p>`
      : html`<ul class="list-group mb-4">${v.passkeys.map((p) => passkeyRow(v, p))}</ul>`;
  const recovery = v.totpEnabled
    ? 'If you lose every passkey, sign in with your password and a code from your authenticator app or one of your recovery codes, then remove the lost passkeys here.'
    : 'If you lose every passkey, sign-in with your password stops at the second step: ask an administrator to reset your two-factor authentication (which removes your passkeys). Add a second passkey, or an authenticator app with recovery codes, so that one lost device does not lock you out.';
  return html`<div class="row justify-content-center"><div class="col-lg-7">
  <p><a href="/settings">← Settings</a></p>
  <h1 class="h3 mb-3">Passkeys</h1>
  <p>A passkey signs you in with your device's screen lock, fingerprint or face, or a security key: no password to type, and
    it works only on this site, so a fake sign-in page cannot use it. With a passkey, signing in with your password also
    asks for it (or your authenticator code) as a second step.</p>
  ${list}
  <h2 class="h5">Add a passkey</h2>
  ${addSection(v)}
  <h2 class="h5 mt-4">If you lose a passkey</h2>
  <p class="small" data-testid="passkey-recovery">${recovery}</p>
</div></div>`;
}
