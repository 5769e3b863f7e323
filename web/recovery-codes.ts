/**
 * The recovery-codes page (/settings/2fa after confirming): "Copy" puts the codes on the clipboard. The download
 * needs no script (a data: link the server renders). No inline script anywhere: the CSP forbids it.
 */
const COPIED_LABEL_MS = 2000;

for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-copy-target]')) {
  const target = document.getElementById(button.dataset.copyTarget ?? '');
  if (!target) continue;
  button.hidden = false;
  button.addEventListener('click', () => {
    const text = target.textContent ?? '';
    const done = (copied: boolean) => {
      if (!copied) {
        // navigator.clipboard exists only on secure origins: select the codes so Ctrl+C copies them.
        const range = document.createRange();
        range.selectNodeContents(target);
        window.getSelection()?.removeAllRanges();
        window.getSelection()?.addRange(range);
      }
      button.textContent = copied ? 'Copied' : 'Press Ctrl+C to copy';
      setTimeout(() => {
        button.textContent = 'Copy';
      }, COPIED_LABEL_MS);
    };
    if (!navigator.clipboard?.writeText) return done(false);
    navigator.clipboard.writeText(text).then(
      () => done(true),
      () => done(false),
    );
  });
}
