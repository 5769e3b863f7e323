import { type AnswerOutcome, cloneTemplate, createPendingAnswer, createTextWriter, type FinalStatus, showFinalAnswer, streamingContent } from './answers.ts';
import { ApiError, postEventStream, postEventStreamWithUpload, requestJson } from './api.ts';
import { type AttachmentTray, type PendingFile, promptFilesElement } from './attachments.ts';
import type { Composer } from './composer.ts';
import { titleFromPrompt } from './format.ts';
import { pollUntilFinal } from './poll.ts';
import type { createAutoScroll } from './scroll.ts';
import { addChatToList } from './sidebar.ts';

export interface ConversationContext {
  root: HTMLElement;
  thread: HTMLElement;
  scroll: ReturnType<typeof createAutoScroll>;
  composer: Composer | null;
  /** The composer's files (paperclip, drop, paste); null where there is no composer. */
  attachments: AttachmentTray | null;
  showError(message: string): void;
  hideError(): void;
  /** Runs once the first message has created the chat, before that message is sent (the chat's instructions). */
  onChatCreated?(chatId: number): Promise<void>;
}

type TextWriter = ReturnType<typeof createTextWriter>;

function parseData(data: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(data);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const asString = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A prompt with files, as POST /api/chats/:id/messages takes it from the page (src/chat/attachment-upload.ts). */
function promptForm(prompt: string, files: PendingFile[]): FormData {
  const form = new FormData();
  form.append('content', prompt);
  for (const p of files) form.append('attachments', p.file, p.file.name);
  return form;
}

/** Sending prompts, streaming answers, Stop, Regenerate/Retry, and picking up an answer that was being written at reload. */
export function createConversation(ctx: ConversationContext) {
  const { root, thread, scroll, composer } = ctx;
  let chatId: number | null = root.dataset.chatId ? Number(root.dataset.chatId) : null;
  let modelName = root.dataset.modelName ?? '';
  // What Stop does right now; null when no answer of ours is being written.
  let stopCurrent: (() => void) | null = null;
  let busy = false;

  const setBusy = (value: boolean) => {
    busy = value;
    if (!value) stopCurrent = null;
    composer?.setBusy(value);
  };

  const finish = (answer: HTMLElement, outcome: AnswerOutcome) => {
    const isLast = thread.lastElementChild?.contains(answer) ?? false;
    // The model that began this answer (from `start`): the chat's model may have been switched meanwhile.
    showFinalAnswer(answer, outcome, { modelName: answer.dataset.modelName ?? modelName, canRegenerate: isLast && composer !== null });
    scroll.follow();
  };

  async function requestStop(responseId: number): Promise<void> {
    try {
      await requestJson('POST', `/api/chats/${chatId}/responses/${responseId}/stop`, {});
    } catch (err) {
      ctx.showError(err instanceof ApiError ? err.message : 'Could not stop the answer.');
    }
  }

  async function follow(responseId: number, answer: HTMLElement, writer: TextWriter): Promise<void> {
    stopCurrent = () => void requestStop(responseId);
    const outcome = await pollUntilFinal(chatId!, responseId, (markdown) => writer.replace(markdown), root.dataset.thinkingText ?? '');
    finish(answer, outcome);
  }

  /** Streams one answer into `answer`; `onRefused` undoes the optimistic UI when the server refused before starting. */
  async function streamAnswer(url: string, body: unknown, answer: HTMLElement, onRefused: (message: string) => void): Promise<void> {
    const post = (onEvent: Parameters<typeof postEventStream>[2]) =>
      body instanceof FormData
        ? postEventStreamWithUpload(url, body, (fraction) => ctx.attachments?.setProgress(fraction), onEvent).finally(() => ctx.attachments?.setProgress(null))
        : postEventStream(url, body, onEvent);
    const startedMs = performance.now();
    const writer = createTextWriter(streamingContent(answer), scroll.follow);
    const state = { responseId: null as number | null, stopWanted: false, outcome: null as AnswerOutcome | null };
    stopCurrent = () => {
      state.stopWanted = true; // before `start` there is no answer id yet: stop as soon as it arrives
      if (state.responseId !== null) void requestStop(state.responseId);
    };
    try {
      await post(({ event, data }) => {
        const d = parseData(data);
        if (event === 'start' && typeof d.idresponse === 'number') {
          state.responseId = d.idresponse;
          answer.dataset.responseId = String(d.idresponse);
          answer.dataset.status = 'streaming';
          // The prompt's id (new for a sent or edited prompt) is what its Edit button needs.
          const turn = answer.closest<HTMLElement>('.turn');
          if (turn && typeof d.idmessage === 'number') turn.dataset.messageId = String(d.idmessage);
          const llm = d.llm as { name?: unknown } | undefined;
          if (typeof llm?.name === 'string') answer.dataset.modelName = llm.name;
          if (state.stopWanted) void requestStop(d.idresponse);
        } else if (event === 'token') {
          writer.append(asString(d.text));
        } else if (event === 'done') {
          const status: FinalStatus = d.status === 'stopped' ? 'stopped' : 'complete';
          state.outcome = { status, html: asString(d.html), error: null, durationMs: performance.now() - startedMs };
        } else if (event === 'error') {
          state.outcome = { status: 'error', html: '', error: asString(d.message) || null, durationMs: null };
        }
      });
    } catch (err) {
      if (err instanceof ApiError && state.responseId === null) {
        setBusy(false);
        return onRefused(err.message);
      }
      // Otherwise the connection broke mid-answer; the server goes on writing it, so we poll for it below.
    }
    if (state.outcome) finish(answer, state.outcome);
    else if (state.responseId !== null) await follow(state.responseId, answer, writer);
    else finish(answer, { status: 'error', html: '', error: 'The connection was lost before the answer started. Try again.', durationMs: null });
    setBusy(false);
  }

  /** The first prompt on /chat creates the chat; the page then becomes that chat's page without reloading. */
  async function createChat(prompt: string): Promise<boolean> {
    const select = document.getElementById('model-select') as HTMLSelectElement | null;
    if (!select) return false;
    try {
      const { id } = await requestJson<{ id: number }>('POST', '/api/chats', { llm: Number(select.value) });
      chatId = id;
      modelName = select.selectedOptions[0]?.textContent ?? '';
      root.dataset.chatId = String(id);
      root.dataset.modelName = modelName;
      history.replaceState(null, '', `/chat/${id}`);
      addChatToList(id, titleFromPrompt(prompt));
      document.getElementById('chat-intro')?.remove();
      await ctx.onChatCreated?.(id);
      return true; // the picker stays: from now on it switches this chat's model (model-switch.ts)
    } catch (err) {
      ctx.showError(err instanceof ApiError ? err.message : 'Could not start the chat.');
      return false;
    }
  }

  function appendTurn(prompt: string, files: PendingFile[]): HTMLElement {
    const turn = cloneTemplate('tpl-turn');
    const bubble = turn.querySelector('.prompt-bubble')!;
    bubble.textContent = prompt;
    const shown = promptFilesElement(files);
    if (shown) bubble.before(shown);
    const time = turn.querySelector<HTMLTimeElement>('.turn-time');
    if (time) {
      const now = new Date();
      time.dateTime = now.toISOString();
      time.textContent = now.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    }
    thread.append(turn);
    return turn;
  }

  async function send(prompt: string): Promise<void> {
    if (busy || !composer) return;
    ctx.hideError();
    setBusy(true);
    if (chatId === null) {
      // Stop pressed while the chat is being created: nothing was asked yet, so the prompt is simply not sent.
      let cancelled = false;
      stopCurrent = () => {
        cancelled = true;
      };
      if (!(await createChat(prompt)) || cancelled) return setBusy(false);
    }
    composer.take();
    const files = ctx.attachments?.take() ?? [];
    // Only the last answer can be regenerated; put the buttons back if the server refuses the prompt.
    const hidden = [...thread.querySelectorAll<HTMLElement>('.regenerate-control')].map((b) => ({ b, parent: b.parentElement }));
    for (const { b } of hidden) b.remove();
    const turn = appendTurn(prompt, files);
    const answer = createPendingAnswer();
    turn.append(answer);
    scroll.toBottom();
    await streamAnswer(`/api/chats/${chatId}/messages`, files.length === 0 ? { content: prompt } : promptForm(prompt, files), answer, (message) => {
      turn.remove();
      for (const { b, parent } of hidden) parent?.append(b);
      composer.restore(prompt);
      ctx.attachments?.restore(files);
      ctx.showError(message);
    });
  }

  /** `modelId`: another model for this one answer; the chat keeps its own. */
  async function regenerate(modelId?: number): Promise<void> {
    const turn = thread.lastElementChild;
    if (busy || chatId === null || !turn) return;
    ctx.hideError();
    setBusy(true);
    const previous = turn.querySelector<HTMLElement>('.turn-answer');
    const answer = createPendingAnswer();
    if (previous) previous.replaceWith(answer);
    else turn.append(answer);
    scroll.follow();
    await streamAnswer(`/api/chats/${chatId}/regenerate`, modelId === undefined ? {} : { llm: modelId }, answer, (message) => {
      if (previous) answer.replaceWith(previous);
      else answer.remove();
      ctx.showError(message);
    });
  }

  /**
   * Edit and resend: `turn`'s prompt becomes `prompt`, the turns after it leave the page (the server deletes them), and
   * the new answer streams in place of the old. A refusal puts everything back; returns whether the edit was sent.
   */
  async function edit(turn: HTMLElement, messageId: number, prompt: string): Promise<boolean> {
    const bubble = turn.querySelector<HTMLElement>('.prompt-bubble');
    if (busy || chatId === null || !bubble) return false;
    ctx.hideError();
    setBusy(true);
    const later: Element[] = [];
    for (let next = turn.nextElementSibling; next; next = next.nextElementSibling) later.push(next);
    for (const t of later) t.remove();
    const oldPrompt = bubble.textContent ?? '';
    bubble.textContent = prompt;
    const previous = turn.querySelector<HTMLElement>('.turn-answer');
    const answer = createPendingAnswer();
    if (previous) previous.replaceWith(answer);
    else turn.append(answer);
    scroll.follow();
    let sent = true;
    await streamAnswer(`/api/chats/${chatId}/messages/${messageId}/edit`, { content: prompt }, answer, (message) => {
      sent = false;
      bubble.textContent = oldPrompt;
      if (previous) answer.replaceWith(previous);
      else answer.remove();
      turn.after(...later);
      ctx.showError(message);
    });
    return sent;
  }

  /** After a reload mid-answer the server renders the partial text; follow it by polling until it is final. */
  async function resume(answer: HTMLElement): Promise<void> {
    const responseId = Number(answer.dataset.responseId);
    if (chatId === null || !Number.isInteger(responseId)) return;
    setBusy(true);
    await follow(responseId, answer, createTextWriter(streamingContent(answer), scroll.follow));
    setBusy(false);
  }

  return {
    send,
    regenerate,
    edit,
    resume,
    isBusy: () => busy,
    stop: () => stopCurrent?.(),
    chatId: () => chatId,
    onModelChange(name: string) {
      modelName = name;
    },
  };
}
