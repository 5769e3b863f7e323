/**
 * Page-wide shortcuts of the chat: Ctrl+Shift+O (⌘+Shift+O on a Mac, as in ChatGPT) opens a new chat; Esc stops the
 * answer being written. Esc is left to an open dialog (Bootstrap closes it) and to the browser's own uses (an input
 * method composing a word).
 */
export function wireChatShortcuts(chat: { stop(): void }): void {
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if ((e.ctrlKey || e.metaKey) && e.shiftKey && !e.altKey && e.key.toLowerCase() === 'o') {
      e.preventDefault();
      window.location.assign('/chat');
      return;
    }
    if (e.key === 'Escape' && !document.querySelector('.modal.show, .offcanvas.show')) chat.stop();
  });
}
