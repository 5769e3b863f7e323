import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';

/** Everything needed to talk to one model on one OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp…). */
export interface ModelConnection {
  id: number;
  name: string;
  baseUrl: string;
  apiKey: string | null;
  model: string;
}

/** A part of a user message (OpenAI's content parts): images go as data: URLs, only to models marked `vision`. */
export type UserContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export type ChatTurn = { role: 'system' | 'assistant'; content: string } | { role: 'user'; content: string | UserContentPart[] };

export type StreamEvent = { type: 'delta'; text: string } | { type: 'usage'; promptTokens: number; completionTokens: number };

export type ModelErrorKind = 'unreachable' | 'http' | 'timeout' | 'malformed' | 'aborted';

/** A failure talking to a model server. The message is written by us and safe to show users: no URL, no key, no upstream text. */
export class ModelError extends Error {
  readonly kind: ModelErrorKind;
  readonly status?: number;

  constructor(kind: ModelErrorKind, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'ModelError';
    this.kind = kind;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

/**
 * Whether a failure says the connection itself is broken (server down, wrong base URL or model id, key refused,
 * silence until the timeout) rather than a passing problem of a working server (busy, 5xx, a broken stream): only
 * the former marks a model failing on the admin's list. The caller also requires that no text had arrived.
 */
export function isConnectionFailure(err: ModelError): boolean {
  if (err.kind === 'unreachable' || err.kind === 'timeout') return true;
  return err.kind === 'http' && (err.status === 401 || err.status === 403 || err.status === 404);
}

const LIST_MODELS_TIMEOUT_MS = 10_000;

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** What a model server's HTTP error status means, in words safe to show any user (also the API's 502 messages). */
export function httpMessage(status: number): string {
  if (status === 401 || status === 403) return `The model server refused the API key (${status})`;
  if (status === 404) return 'The model server answered 404: check the base URL and the model id';
  if (status === 429) return 'The model server is busy or over its quota (429)';
  if (status >= 500) return `The model server had a problem (HTTP ${status}). Try again in a moment.`;
  return `The model server refused the request (HTTP ${status})`;
}

// One SDK client per connection settings, reused: building one per answer costs time on the first-token path.
const clients = new Map<string, OpenAI>();
const MAX_CACHED_CLIENTS = 64;

function createClient(conn: Pick<ModelConnection, 'baseUrl' | 'apiKey'>, timeoutMs: number): OpenAI {
  const key = JSON.stringify([conn.baseUrl, conn.apiKey, timeoutMs]);
  let client = clients.get(key);
  if (!client) {
    if (clients.size >= MAX_CACHED_CLIENTS) clients.clear(); // edited connections leave stale entries behind
    client = newClient(conn, timeoutMs);
    clients.set(key, client);
  }
  return client;
}

function newClient(conn: Pick<ModelConnection, 'baseUrl' | 'apiKey'>, timeoutMs: number): OpenAI {
  return new OpenAI({
    baseURL: conn.baseUrl,
    // Local servers (Ollama, llama.cpp) need no key, but the SDK insists on one.
    apiKey: conn.apiKey ?? 'not-needed',
    // A retried prompt could be answered twice; the user retries instead, knowingly.
    maxRetries: 0,
    timeout: timeoutMs,
    // The SDK would print malformed SSE data to the console; we report it as a ModelError instead.
    logLevel: 'off',
  });
}

/**
 * Maps whatever the SDK or fetch threw to a ModelError. Order matters: every SDK error class is an APIError,
 * the abort and connection errors just have no status.
 */
function toModelError(err: unknown, timeoutMs: number): ModelError {
  if (err instanceof ModelError) return err;
  const timeout = () => new ModelError('timeout', `The model server did not answer within ${seconds(timeoutMs)}`, { cause: err });
  if (err instanceof APIConnectionTimeoutError) return timeout();
  if (err instanceof APIUserAbortError) return new ModelError('aborted', 'The request to the model server was cancelled', { cause: err });
  if (err instanceof APIConnectionError) return new ModelError('unreachable', 'Could not reach the model server', { cause: err });
  if (err instanceof APIError) {
    // No status: an `error` object inside the stream, sent after the headers said 200.
    if (err.status === undefined) return new ModelError('http', 'The model server reported an error while answering', { cause: err });
    return new ModelError('http', httpMessage(err.status), { status: err.status, cause: err });
  }
  // SyntaxError: a data line that is not JSON. TypeError "terminated": the socket closed mid-answer.
  return new ModelError('malformed', 'The model server sent a broken answer', { cause: err });
}

/**
 * Model text made storable, chunk by chunk. PostgreSQL `text` cannot hold U+0000 (an INSERT or UPDATE carrying
 * one fails), so NUL is dropped. A byte-level tokenizer can also send half a surrogate pair: a high surrogate at
 * the end of a chunk is held back until the next chunk, where its other half usually is; one that stays alone
 * becomes U+FFFD — as the database driver's UTF-8 encoding would make it anyway, but now what is streamed to the
 * browser is exactly what is stored, and no cut of the text (a flush, the length bound) can split a pair.
 */
class StorableModelText {
  #held = '';

  push(chunk: string): string {
    let text = this.#held + chunk.replaceAll('\u0000', '');
    this.#held = '';
    if (isHighSurrogate(text.charCodeAt(text.length - 1))) {
      this.#held = text.slice(-1);
      text = text.slice(0, -1);
    }
    return text.toWellFormed();
  }

  /** What is still held back, at the end of the stream. */
  end(): string {
    const rest = this.#held.toWellFormed();
    this.#held = '';
    return rest;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Streams one answer. The SDK's `timeout` only covers the wait for response headers, so an idle timer runs
 * while we wait for each chunk (the first one too) and aborts the request when the server goes quiet. The
 * timer is stopped while the caller processes a chunk, so a slow consumer is never blamed on the server.
 *
 * The SDK ends an aborted stream silently rather than throwing, so why it ended is decided here, from our flags:
 * the caller's signal → 'aborted', our timer → 'timeout', no finish_reason → 'malformed' (a stream cut short
 * looks exactly like a finished one to the SDK, which cannot tell us whether `[DONE]` arrived).
 *
 * The text yielded holds no NUL and no lone surrogate (see StorableModelText).
 */
export async function* streamCompletion(
  conn: ModelConnection,
  messages: ChatTurn[],
  opts: { signal?: AbortSignal; idleTimeoutMs: number },
): AsyncGenerator<StreamEvent> {
  const aborted = () => new ModelError('aborted', 'The request to the model server was cancelled', { cause: opts.signal?.reason });
  if (opts.signal?.aborted) throw aborted();

  const idle = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const startIdleTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      idle.abort();
    }, opts.idleTimeoutMs);
  };
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  const fail = (err: unknown): ModelError => {
    if (opts.signal?.aborted) return aborted();
    if (timedOut) return new ModelError('timeout', `The model server did not answer within ${seconds(opts.idleTimeoutMs)}`, { cause: err });
    return toModelError(err, opts.idleTimeoutMs);
  };

  let iterator: AsyncIterator<OpenAI.Chat.Completions.ChatCompletionChunk> | undefined;
  let finished = false;
  const storable = new StorableModelText();
  try {
    startIdleTimer();
    const stream = await createClient(conn, opts.idleTimeoutMs).chat.completions.create(
      { model: conn.model, messages, stream: true, stream_options: { include_usage: true } },
      { signal },
    );
    iterator = stream[Symbol.asyncIterator]();
    while (true) {
      startIdleTimer();
      const next = await iterator.next();
      clearTimeout(timer);
      if (next.done) break;
      const chunk = next.value;
      for (const choice of chunk.choices ?? []) {
        if (choice.finish_reason) finished = true;
        const text = choice.delta?.content && storable.push(choice.delta.content);
        if (text) yield { type: 'delta', text };
      }
      if (chunk.usage) yield { type: 'usage', promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
    }
  } catch (err) {
    throw fail(err);
  } finally {
    clearTimeout(timer);
    // The caller stopped early (break, return, or an error of its own): let the SDK abort the request.
    await iterator?.return?.().catch(() => undefined);
  }
  if (opts.signal?.aborted || timedOut) throw fail(undefined);
  const rest = storable.end();
  if (rest) yield { type: 'delta', text: rest };
  if (!finished) throw new ModelError('malformed', 'The model server ended the answer before it was complete');
}

/** The model ids a server offers (`GET /models`): the admin page's "Test connection". */
export async function listModels(conn: Pick<ModelConnection, 'baseUrl' | 'apiKey'>, opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? LIST_MODELS_TIMEOUT_MS;
  try {
    const ids: string[] = [];
    for await (const model of createClient(conn, timeoutMs).models.list()) ids.push(model.id);
    return ids;
  } catch (err) {
    throw toModelError(err, timeoutMs);
  }
}
