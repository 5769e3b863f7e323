import { ApiError, requestJson } from './api.ts';

/**
 * The header's model picker. Before the chat exists it only picks the model the chat will be created with; in a chat
 * it switches the chat's model for later answers (PATCH /api/chats/:id {llm}). A refusal puts the old choice back.
 * A chat whose model had become unavailable had no composer: after a switch the page reloads to get one.
 */
export function wireModelPicker(
  select: HTMLSelectElement,
  chat: { chatId(): number | null; onModelChange(name: string): void },
  ui: { input: HTMLTextAreaElement | null; showError(message: string): void; hideError(): void },
): void {
  const nameOf = () => select.selectedOptions[0]?.textContent ?? '';
  const show = (name: string) => {
    chat.onModelChange(name);
    if (ui.input) ui.input.placeholder = `Message ${name}…`;
  };
  let confirmed = select.value;
  select.addEventListener('change', async () => {
    const chatId = chat.chatId();
    if (chatId === null) {
      confirmed = select.value;
      return show(nameOf());
    }
    ui.hideError();
    const wasUnavailable = select.querySelector(`option[value="${CSS.escape(confirmed)}"]`)?.hasAttribute('disabled') ?? false;
    select.disabled = true;
    try {
      await requestJson('PATCH', `/api/chats/${chatId}`, { llm: Number(select.value) });
      confirmed = select.value;
      if (wasUnavailable) return window.location.reload();
      show(nameOf());
    } catch (err) {
      select.value = confirmed;
      ui.showError(err instanceof ApiError ? err.message : 'Could not switch the model.');
    } finally {
      select.disabled = false;
    }
  });
  if (ui.input && select.value) ui.input.placeholder = `Message ${nameOf()}…`;
}
