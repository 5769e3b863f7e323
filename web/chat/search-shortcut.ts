/**
 * Ctrl+K (⌘K on a Mac, as in Slack, GitHub and ChatGPT) goes to search: it focuses the page's search box (the one
 * over the chat list, or the results page's) and selects what it holds; where that box is hidden (the chat list is a
 * closed drawer on a phone) it opens the results page instead.
 */
/** Laid out and not hidden (the closed drawer is `visibility: hidden`, which still has a box). */
const isShown = (input: HTMLElement) => input.getClientRects().length > 0 && getComputedStyle(input).visibility !== 'hidden';

export function wireSearchShortcut(): void {
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (!(e.ctrlKey || e.metaKey) || e.shiftKey || e.altKey || e.key.toLowerCase() !== 'k') return;
    e.preventDefault();
    const box = [...document.querySelectorAll<HTMLInputElement>('input[data-search-input]')].find(isShown);
    if (!box) {
      window.location.assign('/chat/search');
      return;
    }
    box.focus();
    box.select();
  });
}
