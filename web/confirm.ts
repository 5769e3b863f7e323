/**
 * Asks before a destructive form posts. The layout loads this on every page; a page only marks its forms:
 *   <form data-confirm="Deactivate Bob Builder (bob@x.test)? They are signed out at once." data-confirm-button="Deactivate">
 * On submit the post is held and a dialog shows the question (as text: names are user input) with Cancel and the
 * button's label; Confirm posts the form as it was submitted, Cancel or Escape leaves everything as it was.
 * Without JavaScript the form simply posts (the server re-checks everything anyway).
 *
 * A form whose question depends on a choice puts data-confirm (and data-confirm-button) on the <option>s of its
 * select instead (an option without one asks nothing). `data-confirm-count="ids"` fills {count} ("3 people") and {names} (their data-name) from
 * the checked boxes named "ids" that belong to the form; with none ticked nothing is asked and the server explains.
 * No inline script or style: the CSP forbids both.
 */
const NAMES_SHOWN = 5;
const confirmed = new WeakSet<HTMLFormElement>();

function questionOf(form: HTMLFormElement): { message: string; button: string } | null {
  let message = form.dataset.confirm ?? null;
  let button = form.dataset.confirmButton;
  for (const select of form.querySelectorAll('select')) {
    const option = select.selectedOptions[0];
    if (option && 'confirm' in option.dataset) {
      message = option.dataset.confirm ?? null;
      button = option.dataset.confirmButton ?? button;
    } else if (select.querySelector('option[data-confirm]')) message = null;
  }
  if (!message) return null;
  const countName = form.dataset.confirmCount;
  if (countName) {
    const ticked = [...form.elements].filter((el): el is HTMLInputElement => el instanceof HTMLInputElement && el.name === countName && el.checked);
    if (ticked.length === 0) return null;
    const names = ticked.slice(0, NAMES_SHOWN).map((el) => el.dataset.name ?? el.value);
    const more = ticked.length > NAMES_SHOWN ? ` and ${ticked.length - NAMES_SHOWN} more` : '';
    message = message
      .replaceAll('{count}', `${ticked.length} ${ticked.length === 1 ? 'person' : 'people'}`)
      .replaceAll('{names}', `${names.join(', ')}${more}`);
  }
  return { message, button: button || 'Confirm' };
}

let dialog: HTMLDialogElement | undefined;
let messageEl: HTMLParagraphElement;
let confirmButton: HTMLButtonElement;

/** Built once, with DOM calls (no markup strings): the message is set as text. */
function theDialog(): HTMLDialogElement {
  if (dialog) return dialog;
  dialog = document.createElement('dialog');
  dialog.className = 'confirm-dialog';
  dialog.setAttribute('aria-labelledby', 'confirm-dialog-title');
  dialog.setAttribute('aria-describedby', 'confirm-dialog-message');
  const inner = document.createElement('form');
  inner.method = 'dialog';
  inner.className = 'p-3';
  const title = document.createElement('h2');
  title.className = 'h5 mb-3';
  title.id = 'confirm-dialog-title';
  title.textContent = 'Are you sure?';
  messageEl = document.createElement('p');
  messageEl.id = 'confirm-dialog-message';
  const buttons = document.createElement('div');
  buttons.className = 'd-flex flex-wrap justify-content-end gap-2';
  const cancel = document.createElement('button');
  cancel.value = 'cancel';
  cancel.className = 'btn btn-outline-light';
  cancel.textContent = 'Cancel';
  cancel.autofocus = true; // the safe choice has the focus: Enter does not deactivate anyone by accident
  confirmButton = document.createElement('button');
  confirmButton.value = 'confirm';
  confirmButton.className = 'btn btn-danger';
  buttons.append(cancel, confirmButton);
  inner.append(title, messageEl, buttons);
  dialog.append(inner);
  document.body.append(dialog);
  return dialog;
}

function ask(question: { message: string; button: string }): Promise<boolean> {
  if (typeof HTMLDialogElement !== 'function' || !('showModal' in HTMLDialogElement.prototype)) return Promise.resolve(window.confirm(question.message));
  const d = theDialog();
  messageEl.textContent = question.message;
  confirmButton.textContent = question.button;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'confirm'), { once: true }));
}

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || confirmed.has(form)) return;
  const question = questionOf(form);
  if (!question) return;
  event.preventDefault();
  const submitter = event.submitter instanceof HTMLElement ? event.submitter : null;
  void ask(question).then((yes) => {
    if (!yes) return;
    confirmed.add(form);
    form.requestSubmit(submitter as HTMLButtonElement | null);
    // A page that stays (a form another script handles) asks again next time.
    confirmed.delete(form);
  });
});
