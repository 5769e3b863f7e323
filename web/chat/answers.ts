import { addCopyButtons } from './copy-code.ts';
import { formatDuration } from './format.ts';

/*
 * Builds answers in the browser the way src/chat/chat-turn-views.ts renders them on the server: class names
 * and data-* attributes must stay in step. Model output only ever goes in as textContent; innerHTML gets
 * nothing but the `html` the server sanitized.
 */

export type FinalStatus = 'complete' | 'stopped' | 'error' | 'interrupted';

export interface AnswerOutcome {
  status: FinalStatus;
  /** Sanitized by the server (renderMarkdown). */
  html: string;
  error: string | null;
  durationMs: number | null;
}

const STATUS_BADGES: Record<Exclude<FinalStatus, 'complete'>, { label: string; badgeClass: string; fallback: string }> = {
  stopped: { label: 'Stopped', badgeClass: 'text-bg-secondary', fallback: 'You stopped this answer.' },
  error: { label: 'Error', badgeClass: 'text-bg-danger', fallback: 'The model could not answer.' },
  interrupted: { label: 'Interrupted', badgeClass: 'text-bg-warning', fallback: 'The answer was cut off before it finished.' },
};

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Markup the server rendered into a <template>, so it has one source. */
export function cloneTemplate(id: string): HTMLElement {
  const template = document.getElementById(id) as HTMLTemplateElement;
  return template.content.firstElementChild!.cloneNode(true) as HTMLElement;
}

/** A fresh "being written" answer. */
export function createPendingAnswer(): HTMLElement {
  return cloneTemplate('tpl-answer');
}

export function streamingContent(answer: HTMLElement): HTMLElement {
  return answer.querySelector<HTMLElement>('.answer-content')!;
}

/** Text arrives in many small deltas; writing them once per frame keeps long answers smooth. */
export function createTextWriter(target: HTMLElement, onWrite: () => void): { append(text: string): void; replace(text: string): void } {
  const node = document.createTextNode(target.textContent ?? '');
  target.replaceChildren(node);
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    node.appendData(pending);
    pending = '';
    onWrite();
  };
  return {
    append(text) {
      pending += text;
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
    replace(text) {
      pending = '';
      node.data = text;
      onWrite();
    },
  };
}

function regenerateButton(status: FinalStatus): HTMLElement {
  const button = cloneTemplate('tpl-regenerate');
  button.querySelector('.answer-action-label')!.textContent = status === 'complete' ? 'Regenerate' : 'Retry';
  return button;
}

/** Replaces the streamed text with the final, sanitized answer, its status and its footer. */
export function showFinalAnswer(answer: HTMLElement, outcome: AnswerOutcome, o: { modelName: string; canRegenerate: boolean }): void {
  answer.dataset.status = outcome.status;
  answer.removeAttribute('aria-busy');
  const body = answer.querySelector<HTMLElement>('.answer-body')!;
  const parts: HTMLElement[] = [];
  if (outcome.html) {
    const content = element('div', 'answer-content markdown-body');
    content.innerHTML = outcome.html; // sanitized server-side by renderMarkdown; never raw model output
    addCopyButtons(content);
    parts.push(content);
  }
  if (outcome.status !== 'complete') {
    const badge = STATUS_BADGES[outcome.status];
    const note = element('div', 'answer-status');
    note.append(element('span', `badge ${badge.badgeClass}`, badge.label), ' ', element('span', 'answer-status-text', outcome.error || badge.fallback));
    parts.push(note);
  }
  const footer = element('div', 'answer-footer');
  if (outcome.status === 'complete' || outcome.status === 'stopped') {
    const meta = element('span', 'answer-meta');
    const model = element('span', 'answer-model', o.modelName);
    model.title = 'Model';
    meta.append(model);
    if (outcome.durationMs !== null) meta.append(' · ', formatDuration(outcome.durationMs));
    footer.append(meta);
  }
  if (o.canRegenerate) footer.append(regenerateButton(outcome.status));
  if (footer.childElementCount > 0) parts.push(footer);
  body.replaceChildren(...parts);
}
