import type { RelyingParty } from '../config-webauthn.ts';
import { csrfField } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

/** The `data-action` of each passkey button (PRODUCT.md: tests find them by it); web/passkeys.ts acts on them. */
export type PasskeyAction = 'passkey-sign-in' | 'passkey-second-factor' | 'passkey-step-up';

export interface PasskeyButtonView {
  csrfToken: string;
  relyingParty: RelyingParty;
  action: PasskeyAction;
  /** Where the browser module fetches the challenge (POST, JSON back). */
  optionsUrl: string;
  /** Where the signed assertion is posted, as an ordinary form (so the answer is a page, a redirect, a flash). */
  postUrl: string;
  label: string;
  /** The sign-in page also offers passkeys in the e-mail field's autofill (conditional mediation). */
  autofill?: boolean;
  /** Outline (beside another way) or the primary button (the only way). */
  primary?: boolean;
}

/**
 * A passkey button in a form: web/passkeys.ts fetches a challenge, asks the browser (navigator.credentials.get), puts
 * the answer in the hidden `credential` field and posts the form. `data-rp-id` and `data-origin` let it say where
 * passkeys work when the page was opened under another name (http://127.0.0.1 for http://localhost).
 */
export function passkeyButton(v: PasskeyButtonView): SafeHtml {
  return html`<form method="post" action="${v.postUrl}" data-passkey-form data-options="${v.optionsUrl}" data-rp-id="${v.relyingParty.rpId}" data-origin="${v.relyingParty.origin}"${v.autofill ? html` data-autofill` : ''}>
    ${csrfField(v.csrfToken)}<input type="hidden" name="credential" value="">
    <button class="btn ${v.primary ? 'btn-primary' : 'btn-outline-primary'} w-100" type="button" data-action="${v.action}">${v.label}</button>
    <div class="small text-danger" data-passkey-status role="status" aria-live="polite"></div>
  </form>`;
}
