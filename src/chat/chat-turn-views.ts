import type { ResponseStatus } from '../db/schema.ts';
import { html, type SafeHtml, trustedHtml } from '../views/html.ts';
import type { AttachmentSummary } from './attachment-queries.ts';
import { promptFilesView } from './attachment-views.ts';
import { iconRetry, iconSpark } from './chat-icons.ts';
import { editPromptButton } from './chat-prompt-views.ts';
import { type ResponseRecord, THINKING_PLACEHOLDER, type TurnRecord } from './chat-queries.ts';

/** The view shows what the queries return: one shape for a turn and its latest answer. */
export type ResponseView = ResponseRecord;
export type TurnView = TurnRecord & { attachments?: AttachmentSummary[] };
export type { ResponseStatus };

/*
 * The markup here has a twin in web/chat/answers.ts, which builds the same answers in the browser as they
 * stream: class names and data-* attributes must stay in step.
 */

const FINAL_STATUSES: ReadonlySet<ResponseStatus> = new Set(['complete', 'stopped', 'error', 'interrupted']);

const STATUS_BADGES: Partial<Record<ResponseStatus, { label: string; badgeClass: string; fallback: string }>> = {
  stopped: { label: 'Stopped', badgeClass: 'text-bg-secondary', fallback: 'You stopped this answer.' },
  error: { label: 'Error', badgeClass: 'text-bg-danger', fallback: 'The model could not answer.' },
  interrupted: { label: 'Interrupted', badgeClass: 'text-bg-warning', fallback: 'The answer was cut off before it finished.' },
};

/** "0.8 s", "12 s", "2 min 5 s": one decimal only where it means something. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

function statusNote(r: ResponseView): SafeHtml {
  const badge = STATUS_BADGES[r.status];
  if (!badge) return html``;
  return html`<div class="answer-status"><span class="badge ${badge.badgeClass}">${badge.label}</span> <span class="answer-status-text">${r.error || badge.fallback}</span></div>`;
}

/** Names the model that wrote this answer: a chat's model can change between answers. */
function answerMeta(r: ResponseView): SafeHtml {
  if (r.status !== 'complete' && r.status !== 'stopped') return html``;
  const took = r.startedAt && r.endedAt ? formatDuration(r.endedAt.getTime() - r.startedAt.getTime()) : null;
  const model = r.modelName || 'A deleted model';
  return html`<span class="answer-meta"><span class="answer-model" title="Model">${model}</span>${took ? html` · <span title="Inference time">${took}</span>` : ''}</span>`;
}

/**
 * Regenerate (or Retry) with the chat's model, and beside it a menu to ask another model for this one answer
 * (migration 023); web/chat/regenerate-menu.ts fills the menu from the header's model picker when it opens.
 */
function regenerateButton(status: ResponseStatus | null): SafeHtml {
  const label = status === 'complete' ? 'Regenerate' : 'Retry';
  return html`<div class="btn-group dropup regenerate-control"><button type="button" class="btn btn-sm answer-action" data-action="regenerate">${iconRetry()}<span class="answer-action-label">${label}</span></button><button type="button" class="btn btn-sm answer-action dropdown-toggle dropdown-toggle-split regenerate-with" data-bs-toggle="dropdown" aria-expanded="false" title="Another model for this answer"><span class="visually-hidden">Another model for this answer</span></button><ul class="dropdown-menu regenerate-models"></ul></div>`;
}

function answerContent(r: ResponseView): SafeHtml {
  if (!FINAL_STATUSES.has(r.status)) {
    // Partial markdown is shown as text: it is rendered once, by the server, when the answer is final. Until the first
    // words are stored it is the "Thinking..." placeholder, which the typing indicator (CSS, on an empty block) replaces.
    const partial = r.status === 'pending' || r.markdown === THINKING_PLACEHOLDER ? '' : r.markdown;
    return html`<div class="answer-content answer-streaming">${partial}</div>`;
  }
  // Trusted because it is ours: renderMarkdown's output, never the prototype's stored HTML (listTurns renders that again).
  return r.html ? html`<div class="answer-content markdown-body">${trustedHtml(r.html)}</div>` : html``;
}

export interface AnswerOptions {
  /** Only the last answer of a chat whose model is still enabled can be regenerated or retried. */
  canRegenerate: boolean;
  /** Any prompt of a chat that can go on (its model usable) can be edited and sent again. */
  canEdit?: boolean;
}

export function answerView(r: ResponseView | null, o: AnswerOptions): SafeHtml {
  const final = r === null || FINAL_STATUSES.has(r.status);
  const meta = r ? answerMeta(r) : html``;
  const footer =
    final && (meta.value || o.canRegenerate) ? html`<div class="answer-footer">${meta}${o.canRegenerate ? regenerateButton(r?.status ?? null) : ''}</div>` : '';
  // aria-busy: screen readers wait for the finished answer instead of reading every streamed token.
  return html`<div class="turn-answer" ${r ? html`data-response-id="${r.id}" data-status="${r.status}" data-model-name="${r.modelName}"` : html`data-status="missing"`}${final ? '' : html` aria-busy="true"`}>
  <div class="answer-avatar" aria-hidden="true">${iconSpark()}</div>
  <div class="answer-body">
    ${r ? answerContent(r) : html`<div class="answer-status"><span class="answer-status-text">No answer was stored for this message.</span></div>`}
    ${r ? statusNote(r) : ''}
    ${footer}
  </div>
</div>`;
}

export function turnView(t: TurnView, o: AnswerOptions & { chatId?: number }): SafeHtml {
  return html`<article class="turn" data-message-id="${t.messageId}">
  <div class="turn-user">
    ${o.chatId === undefined ? '' : promptFilesView(o.chatId, t.attachments)}
    <div class="prompt-bubble">${t.prompt}</div>
    <div class="turn-user-meta"><time class="turn-time" datetime="${t.createdAt.toISOString()}">${t.createdAt.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>${o.canEdit ? editPromptButton() : ''}</div>
  </div>
  ${answerView(t.response, o)}
</article>`;
}

/** The markup the browser clones for a prompt it sends and the answer it streams; it fills in text with textContent. */
export function newTurnTemplate(): SafeHtml {
  return html`<template id="tpl-turn"><article class="turn">
  <div class="turn-user"><div class="prompt-bubble"></div><div class="turn-user-meta"><time class="turn-time"></time>${editPromptButton()}</div></div>
</article></template>
<template id="tpl-answer"><div class="turn-answer" data-status="pending" aria-busy="true">
  <div class="answer-avatar" aria-hidden="true">${iconSpark()}</div>
  <div class="answer-body"><div class="answer-content answer-streaming"></div></div>
</div></template>
<template id="tpl-regenerate">${regenerateButton('complete')}</template>`;
}
