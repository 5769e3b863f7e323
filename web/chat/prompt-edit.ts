import { cloneTemplate } from './answers.ts';

/**
 * "Edit" under a sent prompt: the bubble gives way to an editor (Save & send, Cancel; Esc cancels). Saving asks the
 * conversation to send the new text in place of the old (POST …/messages/:id/edit), which removes the later turns;
 * when the server refuses, the editor comes back with what was typed.
 */
export function wirePromptEditing(
  thread: HTMLElement,
  chat: { isBusy(): boolean; edit(turn: HTMLElement, messageId: number, prompt: string): Promise<boolean> },
  ui: { showError(message: string): void },
): void {
  function close(turn: HTMLElement): void {
    turn.querySelector('.prompt-editor')?.remove();
    turn.querySelector<HTMLElement>('.turn-user')?.classList.remove('is-editing');
  }

  function open(turn: HTMLElement, text: string): void {
    for (const other of thread.querySelectorAll<HTMLElement>('.turn-user.is-editing')) close(other.closest('.turn') as HTMLElement);
    const user = turn.querySelector<HTMLElement>('.turn-user');
    const bubble = turn.querySelector<HTMLElement>('.prompt-bubble');
    if (!user || !bubble) return;
    const editor = cloneTemplate('tpl-prompt-editor') as HTMLFormElement;
    const input = editor.querySelector<HTMLTextAreaElement>('textarea')!;
    input.value = text;
    user.classList.add('is-editing');
    bubble.after(editor);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    const cancel = () => {
      close(turn);
      turn.querySelector<HTMLElement>('[data-action="edit-prompt"]')?.focus();
    };
    editor.querySelector('[data-action="cancel-edit"]')?.addEventListener('click', cancel);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !e.isComposing) {
        e.preventDefault(); // not the page's Esc (stop an answer)
        cancel();
      } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        editor.requestSubmit();
      }
    });
    editor.addEventListener('submit', async (e) => {
      e.preventDefault();
      const prompt = input.value;
      if (prompt.trim() === '') return ui.showError('The message is empty.');
      const messageId = Number(turn.dataset.messageId);
      if (!Number.isInteger(messageId)) return ui.showError('This message cannot be edited yet: wait for its answer to begin.');
      close(turn);
      if (await chat.edit(turn, messageId, prompt))
        document.getElementById('prompt')?.focus(); // where the next message is written
      else open(turn, prompt);
    });
  }

  thread.addEventListener('click', (e) => {
    const button = (e.target as Element).closest('[data-action="edit-prompt"]');
    const turn = button?.closest<HTMLElement>('.turn');
    if (!turn) return;
    if (chat.isBusy()) return ui.showError('Wait for the answer to finish, or stop it, before editing a message.');
    open(turn, turn.querySelector('.prompt-bubble')?.textContent ?? '');
  });
}
