const COPIED_LABEL_MS = 2000;

async function copyText(text: string): Promise<boolean> {
  // navigator.clipboard exists only on secure origins (https or localhost); a plain-http deployment has none.
  if (!navigator.clipboard?.writeText) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

function selectContents(el: HTMLElement): void {
  const selection = window.getSelection();
  if (!selection) return;
  const range = document.createRange();
  range.selectNodeContents(el);
  selection.removeAllRanges();
  selection.addRange(range);
}

async function onCopy(button: HTMLButtonElement, code: HTMLElement): Promise<void> {
  const copied = await copyText(code.textContent ?? '');
  if (!copied) selectContents(code); // the user can still copy by hand
  button.textContent = copied ? 'Copied' : 'Press Ctrl+C to copy';
  button.classList.toggle('is-done', copied);
  setTimeout(() => {
    button.textContent = 'Copy';
    button.classList.remove('is-done');
  }, COPIED_LABEL_MS);
}

/** Gives every code block in `root` a header with its language and a Copy button (once per block). */
export function addCopyButtons(root: ParentNode): void {
  for (const pre of root.querySelectorAll<HTMLPreElement>('.markdown-body pre')) {
    if (pre.parentElement?.classList.contains('code-block')) continue;
    const code = pre.querySelector<HTMLElement>('code') ?? pre;
    const language = [...code.classList].find((c) => c.startsWith('language-'))?.slice('language-'.length) ?? '';
    const block = document.createElement('div');
    block.className = 'code-block';
    const header = document.createElement('div');
    header.className = 'code-block-header';
    const label = document.createElement('span');
    label.className = 'code-block-lang';
    label.textContent = language || 'code';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn btn-sm code-copy';
    button.textContent = 'Copy';
    button.addEventListener('click', () => void onCopy(button, code));
    header.append(label, button);
    pre.replaceWith(block);
    block.append(header, pre);
  }
}
