import { ApiError, requestJson } from './api.ts';

/**
 * The chat list: adding the chat the page just created, and the rename and delete dialogs. The dialogs are
 * Bootstrap modals opened by data-bs-toggle; `relatedTarget` of their show event is the button that opened them.
 */

interface ModalShowEvent extends Event {
  relatedTarget?: Element | null;
}

/** Bootstrap ignores a hide while the modal is still opening (a quick Enter), so a close then waits until it has opened. */
function createModalCloser(modal: HTMLElement): () => void {
  let opened = false;
  modal.addEventListener('shown.bs.modal', () => {
    opened = true;
  });
  modal.addEventListener('hide.bs.modal', () => {
    opened = false;
  });
  const dismiss = () => modal.querySelector<HTMLButtonElement>('[data-bs-dismiss="modal"]')?.click();
  return () => {
    if (opened) dismiss();
    else modal.addEventListener('shown.bs.modal', dismiss, { once: true });
  };
}

function itemTitle(item: HTMLElement): string {
  return item.querySelector('.chat-link')?.textContent ?? '';
}

/** "Old title · Parley" → "New title · Parley": the app name is whatever the server put after the last separator. */
function retitleDocument(title: string): void {
  const separator = document.title.lastIndexOf(' · ');
  document.title = separator === -1 ? title : `${title}${document.title.slice(separator)}`;
}

export function setChatTitle(item: HTMLElement, title: string, isCurrent: boolean): void {
  const link = item.querySelector<HTMLAnchorElement>('.chat-link')!;
  link.textContent = title;
  link.title = title;
  if (!isCurrent) return;
  const heading = document.getElementById('chat-title');
  if (heading) heading.textContent = title;
  retitleDocument(title);
}

export function addChatToList(id: number, title: string): void {
  const list = document.getElementById('chat-list');
  const template = document.getElementById('tpl-chat-item') as HTMLTemplateElement | null;
  if (!list || !template) return;
  const item = template.content.firstElementChild!.cloneNode(true) as HTMLElement;
  item.dataset.chatId = String(id);
  item.querySelector<HTMLAnchorElement>('.chat-link')!.href = `/chat/${id}`;
  for (const el of list.querySelectorAll('.chat-item.active')) el.classList.remove('active');
  for (const el of list.querySelectorAll('[aria-current]')) el.removeAttribute('aria-current');
  item.classList.add('active');
  item.querySelector('.chat-link')!.setAttribute('aria-current', 'page');
  list.prepend(item);
  setChatTitle(item, title, true);
  document.getElementById('chat-list-empty')?.setAttribute('hidden', '');
}

/** `currentChatId()` is read when the dialog is used: a chat created on this page becomes current without a reload. */
export function wireChatDialogs(currentChatId: () => number | null): void {
  const renameModal = document.getElementById('rename-modal');
  const renameForm = document.getElementById('rename-form') as HTMLFormElement | null;
  const renameInput = document.getElementById('rename-input') as HTMLInputElement | null;
  const renameError = document.getElementById('rename-error');
  const deleteModal = document.getElementById('delete-modal');
  const deleteForm = document.getElementById('delete-form') as HTMLFormElement | null;
  const deleteError = document.getElementById('delete-error');
  let target: HTMLElement | null = null;

  const targetFrom = (e: Event) => (e as ModalShowEvent).relatedTarget?.closest<HTMLElement>('.chat-item') ?? null;
  const targetId = () => Number(target?.dataset.chatId);

  if (renameModal && renameForm && renameInput && renameError) {
    const closeRename = createModalCloser(renameModal);
    const showError = (message: string) => {
      renameError.textContent = message;
      renameInput.classList.toggle('is-invalid', message !== '');
    };
    renameModal.addEventListener('show.bs.modal', (e) => {
      target = targetFrom(e);
      renameInput.value = target ? itemTitle(target) : '';
      showError('');
    });
    renameModal.addEventListener('shown.bs.modal', () => renameInput.select());
    renameForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const title = renameInput.value.trim();
      if (!target) return;
      if (!title) return showError('A title cannot be empty.');
      try {
        const saved = await requestJson<{ id: number; title: string }>('PATCH', `/api/chats/${targetId()}`, { title });
        setChatTitle(target, saved.title, targetId() === currentChatId());
        closeRename();
      } catch (err) {
        showError(err instanceof ApiError ? err.message : 'Could not rename the chat.');
      }
    });
  }

  if (deleteModal && deleteForm && deleteError) {
    const closeDelete = createModalCloser(deleteModal);
    deleteModal.addEventListener('show.bs.modal', (e) => {
      target = targetFrom(e);
      document.getElementById('delete-chat-title')!.textContent = target ? itemTitle(target) : '';
      deleteError.textContent = '';
    });
    deleteForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!target) return;
      const id = targetId();
      try {
        await requestJson<void>('DELETE', `/api/chats/${id}`);
      } catch (err) {
        // Already gone (another tab deleted it): the outcome the user wanted.
        if (!(err instanceof ApiError && err.status === 404)) {
          deleteError.textContent = err instanceof ApiError ? err.message : 'Could not delete the chat.';
          return;
        }
      }
      if (id === currentChatId()) return window.location.assign('/chat');
      target.remove();
      if (!document.querySelector('#chat-list .chat-item')) document.getElementById('chat-list-empty')?.removeAttribute('hidden');
      closeDelete();
    });
  }
}
