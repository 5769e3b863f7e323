/**
 * The menu beside Regenerate: the models of the header's picker (those the user may pick), so one answer can be
 * written by another model while the chat keeps its own. Filled each time it opens, so it follows the picker.
 */
export function wireRegenerateMenu(thread: HTMLElement, select: HTMLSelectElement | null): void {
  thread.addEventListener('show.bs.dropdown', (e) => {
    const menu = (e.target as Element).closest('.regenerate-control')?.querySelector('.regenerate-models');
    if (!menu) return;
    const heading = document.createElement('h6');
    heading.className = 'dropdown-header';
    heading.textContent = 'Regenerate with';
    const items = [...(select?.options ?? [])]
      .filter((o) => !o.disabled)
      .map((o) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'dropdown-item';
        button.dataset.action = 'regenerate';
        button.dataset.llm = o.value;
        button.textContent = o.textContent;
        if (o.selected)
          button.append(' ', Object.assign(document.createElement('span'), { className: 'text-body-secondary small', textContent: '(this chat’s model)' }));
        const li = document.createElement('li');
        li.append(button);
        return li;
      });
    const headingItem = document.createElement('li');
    headingItem.append(heading);
    menu.replaceChildren(headingItem, ...items);
  });
}
