import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { card } from '../views/layout.ts';
import { PASSWORD_MAX_CHARS } from './passwords.ts';

export interface LinkView {
  csrfToken: string;
  email: string;
  error?: string;
  /** "Google", or OIDC_NAME. */
  providerName: string;
}

/**
 * The provider vouched for an address that already has a local account. Merging on the e-mail alone is the pre-registration
 * takeover; the identity is added only when the person proves they own the account.
 */
export function linkGooglePage(v: LinkView): SafeHtml {
  return card(
    `Link your ${v.providerName} account`,
    html`${formAlert(v.error)}
  <p>An account with this e-mail exists — enter its password to link ${v.providerName}.</p>
  <form method="post" action="/login/google/link" novalidate>
    ${csrfField(v.csrfToken)}
    <input type="hidden" name="username" autocomplete="username" value="${v.email}">
    <p class="mb-3"><strong>${v.email}</strong></p>
    ${field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', autofocus: true, maxlength: PASSWORD_MAX_CHARS })}
    <button class="btn btn-primary w-100" type="submit">Link ${v.providerName} and sign in</button>
  </form>
  <p class="mt-3 mb-0 text-center text-body-secondary"><a href="/login">Cancel</a></p>`,
  );
}
