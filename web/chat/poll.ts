import type { AnswerOutcome, FinalStatus } from './answers.ts';
import { ApiError, requestJson } from './api.ts';

const POLL_INTERVAL_MS = 1000;
/** About half a minute of failed polls (server restarting, network gone) before telling the user. */
const MAX_FAILED_POLLS = 30;
const FINAL_STATUSES: readonly string[] = ['complete', 'stopped', 'error', 'interrupted'] satisfies FinalStatus[];

/** GET /api/chats/:id, as far as this module reads it. */
interface ApiChat {
  turns: Array<{
    idmessage: number;
    response: null | {
      idresponse: number;
      status: string;
      markdown: string;
      html: string;
      error: string | null;
      tinf_start: string | null;
      tinf_end: string | null;
    };
  }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function durationMs(start: string | null, end: string | null): number | null {
  if (!start || !end) return null;
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Polls the chat every second until the answer `responseId` is final, passing its partial markdown to
 * `onProgress` meanwhile (shown as text, never as HTML). Always resolves, with an error outcome if the
 * answer vanished or the server stayed unreachable.
 */
export async function pollUntilFinal(chatId: number, responseId: number, onProgress: (markdown: string) => void, thinkingText: string): Promise<AnswerOutcome> {
  let failures = 0;
  for (;;) {
    await sleep(POLL_INTERVAL_MS);
    let chat: ApiChat;
    try {
      chat = await requestJson<ApiChat>('GET', `/api/chats/${chatId}`);
      failures = 0;
    } catch (err) {
      const fatal = err instanceof ApiError && err.status >= 400 && err.status < 500;
      if (fatal || ++failures >= MAX_FAILED_POLLS) {
        const message = fatal ? err.message : 'Lost contact with the server. Reload the page to see the answer.';
        return { status: 'error', html: '', error: message, durationMs: null };
      }
      continue;
    }
    const response = chat.turns.find((t) => t.response?.idresponse === responseId)?.response;
    if (!response) return { status: 'error', html: '', error: 'This answer was replaced. Reload the page to see the latest one.', durationMs: null };
    if (FINAL_STATUSES.includes(response.status)) {
      return {
        status: response.status as FinalStatus,
        html: response.html,
        error: response.error,
        durationMs: durationMs(response.tinf_start, response.tinf_end),
      };
    }
    // Before its first words an answer holds the server's "Thinking..." placeholder: the typing indicator says it better.
    onProgress(response.status === 'pending' || response.markdown === thinkingText ? '' : response.markdown);
  }
}
