/** The counter appears once a prompt gets near the limit, where it starts to matter. */
const COUNTER_FROM_RATIO = 0.8;
const MAX_INPUT_HEIGHT_RATIO = 0.4;

export interface Composer {
  readonly input: HTMLTextAreaElement;
  setBusy(busy: boolean): void;
  take(): string;
  restore(text: string): void;
  refresh(): void;
}

/**
 * The prompt box: Enter sends, Shift+Enter adds a line, the box grows with its text, and the Send button
 * becomes Stop while an answer is being written.
 */
export function createComposer(form: HTMLFormElement, handlers: { onSend(text: string): void; onStop(): void }): Composer {
  const input = form.querySelector<HTMLTextAreaElement>('#prompt')!;
  const button = form.querySelector<HTMLButtonElement>('#send')!;
  const counter = document.getElementById('prompt-count');
  let busy = false;

  const autosize = () => {
    input.style.height = 'auto'; // CSSOM from our own script is allowed by the CSP; style="" attributes are not
    input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * MAX_INPUT_HEIGHT_RATIO)}px`;
  };
  const refresh = () => {
    autosize();
    const max = input.maxLength;
    if (counter) counter.textContent = max > 0 && input.value.length >= max * COUNTER_FROM_RATIO ? `${input.value.length} / ${max}` : '';
    button.disabled = !busy && input.value.trim() === '';
  };

  input.addEventListener('input', refresh);
  input.addEventListener('keydown', (e) => {
    // isComposing: Enter also confirms a word in Chinese/Japanese input methods, and must not send then.
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    if (!busy) form.requestSubmit();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (busy) return handlers.onStop();
    if (input.value.trim() !== '') handlers.onSend(input.value);
  });
  refresh();

  return {
    input,
    setBusy(value) {
      busy = value;
      form.classList.toggle('is-busy', value);
      button.setAttribute('aria-label', value ? 'Stop' : 'Send');
      button.title = value ? 'Stop the answer' : 'Send (Enter)';
      refresh();
    },
    take() {
      const text = input.value;
      input.value = '';
      refresh();
      return text;
    },
    restore(text) {
      input.value = text;
      refresh();
      input.focus();
    },
    refresh,
  };
}
