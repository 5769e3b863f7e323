import { type AttachmentTray, createAttachmentTray } from './chat/attachments.ts';
import { createComposer } from './chat/composer.ts';
import { createConversation } from './chat/conversation.ts';
import { addCopyButtons } from './chat/copy-code.ts';
import { wireInstructions } from './chat/instructions.ts';
import { wireChatShortcuts } from './chat/keyboard.ts';
import { wireModelPicker } from './chat/model-switch.ts';
import { wirePromptEditing } from './chat/prompt-edit.ts';
import { wireRegenerateMenu } from './chat/regenerate-menu.ts';
import { createAutoScroll } from './chat/scroll.ts';
import { wireSearchShortcut } from './chat/search-shortcut.ts';
import { wireChatDialogs } from './chat/sidebar.ts';

/**
 * The chat page (/chat, /chat/:id). Everything it needs is in the markup (data-* attributes, <template>s),
 * none in inline script (CSP). Pages without the chat, or without a composer (no models, model disabled),
 * get only what applies.
 */
function localizeTimes(root: ParentNode): void {
  for (const time of root.querySelectorAll<HTMLTimeElement>('time.turn-time[datetime]')) {
    const date = new Date(time.dateTime);
    if (!Number.isNaN(date.getTime())) time.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }
}

function wireAlert(): { show(message: string): void; hide(): void } {
  const alert = document.getElementById('chat-alert');
  const text = document.getElementById('chat-alert-text');
  const hide = () => alert?.setAttribute('hidden', '');
  document.getElementById('chat-alert-close')?.addEventListener('click', hide);
  return {
    show(message) {
      if (!alert || !text) return window.alert(message);
      text.textContent = message;
      alert.removeAttribute('hidden');
    },
    hide,
  };
}

function start(root: HTMLElement): void {
  const thread = document.getElementById('chat-thread');
  const scroller = document.getElementById('chat-scroll');
  if (!thread || !scroller) return;
  const scroll = createAutoScroll(scroller);
  const alert = wireAlert();
  const form = document.getElementById('composer') as HTMLFormElement | null;

  // The composer's handlers need the conversation and vice versa: the conversation is filled in just below.
  let conversation: ReturnType<typeof createConversation> | null = null;
  const composer = form
    ? createComposer(form, {
        onSend: (text) => void conversation?.send(text),
        onStop: () => conversation?.stop(),
      })
    : null;
  const instructions = wireInstructions({ chatId: () => conversation?.chatId() ?? null }, { showError: alert.show });
  const attachments: AttachmentTray | null = composer ? createAttachmentTray(root, composer.input, alert.show, () => composer.refresh()) : null;
  conversation = createConversation({
    root,
    thread,
    scroll,
    composer,
    attachments,
    showError: alert.show,
    hideError: alert.hide,
    onChatCreated: instructions.applyTo,
  });
  const chat = conversation;

  wireChatDialogs(chat.chatId);
  wireChatShortcuts(chat);
  const select = document.getElementById('model-select') as HTMLSelectElement | null;
  thread.addEventListener('click', (e) => {
    const regenerate = (e.target as Element).closest<HTMLElement>('[data-action="regenerate"]');
    // A model picked in the menu beside Regenerate writes this one answer (data-llm); the button alone: the chat's model.
    if (regenerate) void chat.regenerate(regenerate.dataset.llm ? Number(regenerate.dataset.llm) : undefined);
  });
  wireRegenerateMenu(thread, select);
  wirePromptEditing(thread, chat, { showError: alert.show });
  if (select) wireModelPicker(select, chat, { input: composer?.input ?? null, showError: alert.show, hideError: alert.hide });

  addCopyButtons(thread);
  localizeTimes(thread);
  scroll.toBottom();
  const unfinished = thread.querySelectorAll<HTMLElement>('.turn-answer[data-status="pending"], .turn-answer[data-status="streaming"]');
  for (const answer of unfinished) void chat.resume(answer);
}

wireSearchShortcut();
const root = document.getElementById('chat');
if (root) start(root);
