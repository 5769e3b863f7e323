/**
 * Passkeys in the browser: the buttons and forms the server renders (src/auth/passkey-views.ts,
 * src/settings/passkey-views.ts) are driven here with @simplewebauthn/browser, bundled (no CDN; the CSP stays strict).
 *
 *   <form data-passkey-form data-options="/login/passkey/options" …> with a button data-action="passkey-sign-in" (or
 *   passkey-second-factor, passkey-step-up): a click fetches a challenge (JSON), asks the authenticator
 *   (navigator.credentials.get), puts its answer in the hidden `credential` field and posts the form. The server
 *   answers as for any sign-in: a redirect, a flash. `data-autofill`: the e-mail field's autofill offers passkeys too.
 *   <form data-passkey-register …> (Settings → Passkeys): its submit button makes a new passkey the same way.
 *
 * `data-rp-id` / `data-origin`: passkeys work only on the server's own name; a page opened under another one (http://
 * 127.0.0.1 for http://localhost) says where to go instead of failing with a browser error.
 */
import { browserSupportsWebAuthn, browserSupportsWebAuthnAutofill, startAuthentication, startRegistration } from '@simplewebauthn/browser';

const AUTH_ACTIONS = ['passkey-sign-in', 'passkey-second-factor', 'passkey-step-up'];

function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
}

function say(form: HTMLFormElement, text: string): void {
  const status = form.querySelector<HTMLElement>('[data-passkey-status]');
  if (status) status.textContent = text;
}

/** Null when passkeys can work on this page; else why not, in words. */
function unavailable(form: HTMLFormElement): string | null {
  if (!browserSupportsWebAuthn()) return 'This browser does not support passkeys.';
  const rpId = form.dataset.rpId ?? '';
  const host = location.hostname;
  if (rpId && host !== rpId && !host.endsWith(`.${rpId}`)) return `Passkeys work at ${form.dataset.origin ?? rpId}. Open this page there to use one.`;
  return null;
}

class NeedsConfirmation extends Error {}

/** The options the server made for this ceremony (its challenge is stored, bound to this browser). */
async function fetchOptions<T>(form: HTMLFormElement): Promise<T> {
  const res = await fetch(form.dataset.options ?? '', {
    method: 'POST',
    headers: { accept: 'application/json', 'x-csrf-token': csrfToken() },
    credentials: 'same-origin',
  });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
  if (res.status === 403 && String(body.message ?? body.error ?? '').includes('/settings/confirm')) throw new NeedsConfirmation();
  if (!res.ok) throw new Error(body.message ?? body.error ?? `The server answered ${res.status}.`);
  return body;
}

/** What to tell the person when the browser or authenticator said no. */
function problemText(err: unknown): string {
  const name = err instanceof Error ? err.name : '';
  if (name === 'NotAllowedError' || name === 'AbortError') return 'The passkey request was cancelled or timed out. Try again.';
  if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.';
  return err instanceof Error ? err.message : 'Something went wrong with the passkey. Try again.';
}

function submitWith(form: HTMLFormElement, answer: unknown): void {
  const field = form.querySelector<HTMLInputElement>('input[name="credential"]');
  if (!field) return;
  field.value = JSON.stringify(answer);
  form.submit(); // the native submit: no submit event, so this module does not catch its own post
}

async function authenticate(form: HTMLFormElement, autofill: boolean): Promise<void> {
  const optionsJSON = await fetchOptions<Parameters<typeof startAuthentication>[0]['optionsJSON']>(form);
  const answer = await startAuthentication({ optionsJSON, useBrowserAutofill: autofill });
  submitWith(form, answer);
}

function wireAuthentication(form: HTMLFormElement, button: HTMLButtonElement): void {
  const problem = unavailable(form);
  if (problem) {
    button.disabled = true;
    say(form, problem);
    return;
  }
  button.addEventListener('click', () => {
    say(form, '');
    button.disabled = true;
    authenticate(form, false).catch((err: unknown) => {
      button.disabled = false;
      say(form, problemText(err));
    });
  });
  // The e-mail field's autofill lists this site's passkeys; picking one signs in. A click on the button cancels it
  // (the library aborts the pending request), and its failure is then nobody's business.
  if (form.hasAttribute('data-autofill') && document.querySelector('input[autocomplete~="webauthn"]')) {
    void browserSupportsWebAuthnAutofill()
      .then((yes) => (yes ? authenticate(form, true) : undefined))
      .catch(() => undefined);
  }
}

function wireRegistration(form: HTMLFormElement): void {
  const button = form.querySelector<HTMLButtonElement>('[data-action="add-passkey"]');
  const problem = unavailable(form);
  if (problem) {
    if (button) button.disabled = true;
    say(form, problem);
    return;
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = form.querySelector<HTMLInputElement>('input[name="passkey_name"]');
    if (name && name.value.trim() === '') {
      name.classList.add('is-invalid');
      say(form, 'Give the passkey a name first.');
      name.focus();
      return;
    }
    say(form, '');
    if (button) button.disabled = true;
    fetchOptions<Parameters<typeof startRegistration>[0]['optionsJSON']>(form)
      .then((optionsJSON) => startRegistration({ optionsJSON }))
      .then((answer) => submitWith(form, answer))
      .catch((err: unknown) => {
        if (err instanceof NeedsConfirmation) {
          location.assign(`/settings/confirm?next=${encodeURIComponent(location.pathname)}`);
          return;
        }
        if (button) button.disabled = false;
        say(form, problemText(err));
      });
  });
}

for (const form of document.querySelectorAll<HTMLFormElement>('form[data-passkey-form]')) {
  const button = form.querySelector<HTMLButtonElement>(AUTH_ACTIONS.map((a) => `[data-action="${a}"]`).join(','));
  if (button) wireAuthentication(form, button);
}
for (const form of document.querySelectorAll<HTMLFormElement>('form[data-passkey-register]')) wireRegistration(form);
