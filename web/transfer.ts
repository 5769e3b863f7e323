/**
 * Settings → Export and import: posts the import form with fetch, because the server reads a multipart body only
 * after its CSRF check, which therefore takes the token from the `x-csrf-token` header (src/chat/transfer-routes.ts).
 * On success the server has left the summary as a flash and says where to go; a refusal's reason is shown here.
 */
const form = document.querySelector<HTMLFormElement>('#import-form');
const errorBox = document.querySelector<HTMLElement>('#import-error');
const progress = document.querySelector<HTMLElement>('#import-progress');
const submit = document.querySelector<HTMLButtonElement>('#import-submit');

function showError(message: string): void {
  if (!errorBox) return;
  errorBox.textContent = message;
  errorBox.hidden = false;
}

async function reasonOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: a proxy's page, say
  }
  return res.status === 413 ? 'The file is too large.' : `The import failed (HTTP ${res.status}).`;
}

form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = form.querySelector<HTMLInputElement>('input[type=file]')?.files?.[0];
  if (errorBox) errorBox.hidden = true;
  if (!file) return showError('Choose a file to import.');
  const token = form.querySelector<HTMLInputElement>('input[name=_csrf]')?.value ?? '';
  if (submit) submit.disabled = true;
  if (progress) progress.textContent = `Importing ${file.name}…`;
  try {
    const res = await fetch(form.action, { method: 'POST', body: new FormData(form), headers: { 'x-csrf-token': token, accept: 'application/json' } });
    if (res.ok) {
      const body = (await res.json()) as { location?: string };
      window.location.assign(body.location ?? '/chat');
      return;
    }
    showError(await reasonOf(res));
  } catch {
    showError('The server could not be reached. Check your connection and try again.');
  } finally {
    if (submit) submit.disabled = false;
    if (progress) progress.textContent = '';
  }
});
