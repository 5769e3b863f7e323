import { ApiError, requestJson } from './api.ts';

/**
 * The chat's own instructions (its system prompt, PATCH /api/chats/:id {system_prompt}), in the panel under the
 * header. Before the chat exists (/chat) they are kept in the box and saved by `applyTo` once the first message has
 * created the chat, before that message is sent.
 */
export function wireInstructions(chat: { chatId(): number | null }, ui: { showError(message: string): void }): { applyTo(chatId: number): Promise<void> } {
  const form = document.getElementById('instructions-form') as HTMLFormElement | null;
  const input = document.getElementById('instructions-input') as HTMLTextAreaElement | null;
  const status = document.getElementById('instructions-status');
  const toggle = document.getElementById('instructions-toggle');
  if (!form || !input || !status) return { applyTo: async () => {} };

  const say = (text: string, isError = false) => {
    status.textContent = text;
    status.classList.toggle('text-danger', isError);
  };
  const markSet = (value: string) => toggle?.toggleAttribute('data-set', value.trim() !== '');
  const save = (chatId: number, value: string) => requestJson('PATCH', `/api/chats/${chatId}`, { system_prompt: value });

  input.addEventListener('input', () => say(''));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chatId = chat.chatId();
    const value = input.value;
    if (chatId === null) {
      markSet(value);
      return say(value.trim() ? 'Kept for the new chat: saved with its first message.' : 'No instructions.');
    }
    say('Saving…');
    try {
      await save(chatId, value);
      markSet(value);
      say(value.trim() ? 'Saved. The next answers follow them.' : 'Removed.');
    } catch (err) {
      say(err instanceof ApiError ? err.message : 'Could not save the instructions.', true);
    }
  });

  return {
    async applyTo(chatId) {
      if (input.value.trim() === '') return;
      try {
        await save(chatId, input.value);
        markSet(input.value);
        say('Saved. The next answers follow them.');
      } catch (err) {
        ui.showError(`Your instructions were not saved: ${err instanceof ApiError ? err.message : 'the request failed.'}`);
      }
    },
  };
}
