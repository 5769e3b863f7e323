import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Dispatcher } from 'undici';
import { estimateTokens } from '../groups/usage-limits.ts';
import { httpMessage, type ModelConnection } from '../llm/model-client.ts';
import type { AppMetrics } from '../metrics/metrics.ts';
import type { AdmittedCall, ApiCallEnd } from './api-call-queries.ts';
import type { ApiCallJournal } from './call-journal.ts';
import { type CompletionRequest, requestTextChars } from './completion-request.ts';
import { OpenAiError } from './openai-errors.ts';

/**
 * One admitted API call relayed to the admin's upstream: the body goes on with the upstream's model id, the answer
 * comes back with the Parley model name, chunk by chunk as it arrives (tools and tool_calls deltas untouched), and the
 * call's end is recorded once: complete, error, client_gone (the caller disconnected: the upstream request is
 * aborted at once, so nothing goes on generating), or interrupted (shutdown).
 */

/** Why a call was cut short by us; the first reason wins. */
type StopReason = 'client' | 'shutdown' | 'idle' | 'max_time';

export class RunningCall {
  readonly controller = new AbortController();
  reason: StopReason | null = null;
  finished: Promise<void> = Promise.resolve();

  stop(reason: StopReason): void {
    this.reason ??= reason;
    this.controller.abort();
  }
}

/** The calls this process is relaying: shutdown gives them SHUTDOWN_GRACE_S, then ends them (decision record 002). */
export class ApiCallRegistry {
  readonly running = new Set<RunningCall>();

  async stopAll(graceMs: number): Promise<void> {
    const all = () => Promise.allSettled([...this.running].map((c) => c.finished));
    if (graceMs > 0 && this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const call of this.running) call.stop('shutdown');
    await all();
  }
}

export interface RelayDeps {
  journal: ApiCallJournal;
  /** The connection pools to the upstreams (an undici Agent, closed with the app): see callUpstream. */
  upstream: Dispatcher;
  log: FastifyBaseLogger;
  registry: ApiCallRegistry;
  /** LLM_TIMEOUT_S: the longest silence of the upstream (before its headers, and between chunks). */
  idleTimeoutMs: number;
  /** LLM_MAX_ANSWER_S: the longest a call may take in all. */
  maxAnswerMs: number;
  metrics?: AppMetrics;
}

export interface RelayedCall {
  admitted: AdmittedCall;
  connection: ModelConnection;
  request: CompletionRequest;
  /** performance.now() when the call was admitted: its first token's and its end's times are measured from here. */
  startedAt: number;
}

/** How a relay ended; its duration is added when it is recorded. */
type RelayEnd = Omit<ApiCallEnd, 'elapsedMs'>;

/** The chat completions endpoint under a base URL: `http://host:port/v1` → `http://host:port` and `/v1/chat/completions`. */
function endpoint(baseUrl: string): { origin: string; path: string } {
  const url = new URL(baseUrl);
  return { origin: url.origin, path: `${url.pathname.replace(/\/+$/, '')}/chat/completions` };
}

/** What the upstream is sent: the caller's parameters, the upstream's model id, and usage always asked for (it is counted). */
function upstreamBody(call: RelayedCall): string {
  const { request, connection } = call;
  const body: Record<string, unknown> = { ...request, model: connection.model };
  if (request.stream) body.stream_options = { ...request.stream_options, include_usage: true };
  return JSON.stringify(body);
}

/** An upstream's failure as the caller's answer: the model server's refusals are 502, never its text (except a 400's). */
async function upstreamError(res: Dispatcher.ResponseData): Promise<OpenAiError> {
  if (res.statusCode === 400 || res.statusCode === 422) {
    // The caller's own request was refused (a context too long, a bad tool schema): its message helps them fix it.
    const text = await res.body.text().catch(() => '');
    let message = `The model server refused the request (HTTP ${res.statusCode}).`;
    try {
      const upstream = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
      if (typeof upstream === 'string' && upstream.trim()) message = upstream.slice(0, 500);
    } catch {}
    return new OpenAiError(400, message, { code: 'upstream_bad_request' });
  }
  res.body.destroy();
  if (res.statusCode === 429) return new OpenAiError(429, httpMessage(429), { type: 'rate_limit_error', code: 'upstream_rate_limited', retryAfterS: 5 });
  return new OpenAiError(502, httpMessage(res.statusCode), { type: 'upstream_error', code: 'upstream_error' });
}

function connectionError(call: RunningCall, err: unknown, idleTimeoutMs: number): OpenAiError {
  if (call.reason === 'idle')
    return new OpenAiError(502, `The model server did not answer within ${idleTimeoutMs / 1000} s`, { type: 'upstream_error', code: 'upstream_timeout' });
  void err;
  return new OpenAiError(502, 'Could not reach the model server', { type: 'upstream_error', code: 'upstream_unreachable' });
}

/** Runs one call to its end; every outcome is handed to the journal (which writes it soon after) before this resolves. */
export async function relayCompletion(deps: RelayDeps, call: RelayedCall, reply: FastifyReply): Promise<void> {
  const running = new RunningCall();
  deps.registry.running.add(running);
  deps.metrics?.answersInFlight.inc();
  // The caller going away aborts the upstream request: no orphaned generation.
  const onClose = () => {
    if (!reply.raw.writableFinished) running.stop('client');
  };
  reply.raw.on('close', onClose);
  let idleTimer: NodeJS.Timeout | undefined;
  const resetIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => running.stop('idle'), deps.idleTimeoutMs);
  };
  const deadline = setTimeout(() => running.stop('max_time'), deps.maxAnswerMs);
  const work = (call.request.stream ? relayStream : relayWhole)(deps, call, running, reply, resetIdle);
  running.finished = work.then(
    () => undefined,
    () => undefined,
  );
  try {
    const end = await work;
    deps.journal.end(call.admitted, { ...end, elapsedMs: performance.now() - call.startedAt });
    deps.metrics?.answers.inc({ model: call.connection.name, status: end.status === 'client_gone' ? 'stopped' : end.status });
  } finally {
    clearTimeout(idleTimer);
    clearTimeout(deadline);
    reply.raw.off('close', onClose);
    deps.registry.running.delete(running);
    deps.metrics?.answersInFlight.dec();
  }
}

function endOf(running: RunningCall, fallback: RelayEnd['status']): RelayEnd['status'] {
  if (running.reason === 'client') return 'client_gone';
  if (running.reason === 'shutdown') return 'interrupted';
  return fallback;
}

function sendError(reply: FastifyReply, err: OpenAiError): void {
  if (reply.raw.headersSent || reply.raw.destroyed) return;
  if (err.retryAfterS !== undefined) reply.header('retry-after', String(err.retryAfterS));
  reply.code(err.status).send(err.body);
}

const isOk = (res: Dispatcher.ResponseData) => res.statusCode >= 200 && res.statusCode < 300;

/**
 * The request to the upstream, through undici's `request` rather than `fetch`: the same client underneath, without
 * the WHATWG layers, which cost a quarter of a millisecond of CPU per call (0.24–0.28 ms against 0.05–0.07 on the
 * 2-core machine): with them, the relay's process was the first to run out of CPU (bench/README.md, api-throughput).
 * Our own idle timer and deadline end a call (their reasons are told apart); undici's own timeouts are off.
 */
async function callUpstream(deps: RelayDeps, call: RelayedCall, running: RunningCall, resetIdle: () => void): Promise<Dispatcher.ResponseData> {
  resetIdle();
  return deps.upstream.request({
    ...endpoint(call.connection.baseUrl),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: call.request.stream ? 'text/event-stream' : 'application/json',
      ...(call.connection.apiKey ? { authorization: `Bearer ${call.connection.apiKey}` } : {}),
    },
    body: upstreamBody(call),
    signal: running.controller.signal,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

async function relayWhole(deps: RelayDeps, call: RelayedCall, running: RunningCall, reply: FastifyReply, resetIdle: () => void): Promise<RelayEnd> {
  const failed = (err: OpenAiError, status: RelayEnd['status'] = 'error'): RelayEnd => {
    const ended = endOf(running, status);
    if (ended !== 'client_gone') sendError(reply, ended === 'interrupted' ? shutdownError() : err);
    return { status: ended, firstTokenMs: null, promptTokens: null, completionTokens: null, estimated: false, error: err.message };
  };
  let answer: Record<string, unknown>;
  try {
    const res = await callUpstream(deps, call, running, resetIdle);
    if (!isOk(res)) return failed(await upstreamError(res));
    answer = (await res.body.json()) as Record<string, unknown>;
  } catch (err) {
    return failed(connectionError(running, err, deps.idleTimeoutMs));
  }
  const firstTokenMs = performance.now() - call.startedAt;
  if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.choices))
    return failed(new OpenAiError(502, 'The model server sent a broken answer', { type: 'upstream_error', code: 'upstream_error' }));
  const usage = readUsage(answer.usage);
  const text = (answer.choices as Array<{ message?: { content?: unknown } }>)
    .map((c) => (typeof c.message?.content === 'string' ? c.message.content : ''))
    .join('');
  answer.model = call.connection.name;
  const counted = usage ?? { promptTokens: estimateTokens(requestTextChars(call.request)), completionTokens: estimateTokens(text.length) };
  if (!usage)
    answer.usage = {
      prompt_tokens: counted.promptTokens,
      completion_tokens: counted.completionTokens,
      total_tokens: counted.promptTokens + counted.completionTokens,
    };
  if (running.reason === 'client') return { status: 'client_gone', firstTokenMs, ...counted, estimated: !usage, error: null };
  reply.code(200).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(answer));
  return { status: 'complete', firstTokenMs, ...counted, estimated: !usage, error: null };
}

const shutdownError = () => new OpenAiError(503, 'The server is shutting down; try again in a moment.', { type: 'server_error', code: 'server_shutting_down' });

function readUsage(u: unknown): { promptTokens: number; completionTokens: number } | null {
  const usage = u as { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined;
  if (!usage || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') return null;
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}

/**
 * The stream: the upstream's SSE events, re-framed one by one. Each `data:` line is parsed (to learn the first
 * token, the text length and the usage) and written again with the Parley model name; the usage-only chunk is left
 * out when the caller did not ask for it (it is always asked of the upstream, for counting).
 */
async function relayStream(deps: RelayDeps, call: RelayedCall, running: RunningCall, reply: FastifyReply, resetIdle: () => void): Promise<RelayEnd> {
  const callerWantsUsage = call.request.stream_options?.include_usage === true;
  let res: Dispatcher.ResponseData;
  try {
    res = await callUpstream(deps, call, running, resetIdle);
  } catch (err) {
    const status = endOf(running, 'error');
    const error = connectionError(running, err, deps.idleTimeoutMs);
    if (status !== 'client_gone') sendError(reply, status === 'interrupted' ? shutdownError() : error);
    return { status, firstTokenMs: null, promptTokens: null, completionTokens: null, estimated: false, error: error.message };
  }
  if (!isOk(res)) {
    const error = await upstreamError(res);
    const status = endOf(running, 'error');
    if (status !== 'client_gone') sendError(reply, error);
    return { status, firstTokenMs: null, promptTokens: null, completionTokens: null, estimated: false, error: error.message };
  }

  reply.hijack();
  const out = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) out.setHeader(name, value);
  out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  const open = () => !out.destroyed && !out.writableEnded;

  let firstTokenMs: number | null = null;
  let textChars = 0;
  let usage: { promptTokens: number; completionTokens: number } | null = null;
  let done = false;
  let upstreamFailed: string | null = null;
  let buffered = '';

  const handleEvent = (event: string) => {
    let data = '';
    for (const line of event.split('\n')) if (line.startsWith('data:')) data += line.slice(line[5] === ' ' ? 6 : 5);
    if (data === '') return;
    if (data === '[DONE]') {
      done = true;
      if (open()) out.write('data: [DONE]\n\n');
      return;
    }
    let chunk: Record<string, unknown>;
    try {
      chunk = JSON.parse(data) as Record<string, unknown>;
    } catch {
      upstreamFailed = 'The model server sent a broken answer';
      return;
    }
    if (chunk.error) upstreamFailed = 'The model server reported an error while answering';
    const choices = Array.isArray(chunk.choices) ? (chunk.choices as Array<{ delta?: { content?: unknown; tool_calls?: unknown } }>) : [];
    for (const c of choices) {
      const content = c.delta?.content;
      if (typeof content === 'string') textChars += content.length;
      if (firstTokenMs === null && ((typeof content === 'string' && content !== '') || c.delta?.tool_calls)) firstTokenMs = performance.now() - call.startedAt;
    }
    const reported = readUsage(chunk.usage);
    if (reported) usage = reported;
    if (!callerWantsUsage) {
      if (choices.length === 0 && reported) return; // the usage-only chunk nobody asked for
      delete chunk.usage;
    }
    if ('model' in chunk) chunk.model = call.connection.name;
    if (open()) out.write(`data: ${JSON.stringify(chunk)}\n\n`);
  };

  try {
    res.body.setEncoding('utf8'); // a character split between two reads is joined again
    resetIdle();
    for await (const text of res.body as AsyncIterable<string>) {
      resetIdle();
      buffered += text.replaceAll('\r\n', '\n');
      for (let cut = buffered.indexOf('\n\n'); cut !== -1; cut = buffered.indexOf('\n\n')) {
        handleEvent(buffered.slice(0, cut));
        buffered = buffered.slice(cut + 2);
      }
    }
    if (buffered.trim()) handleEvent(buffered);
  } catch {
    // An abort (ours) or the upstream's socket closing: told apart below by the reason and whether [DONE] came.
  }
  const counted = usage ?? { promptTokens: estimateTokens(requestTextChars(call.request)), completionTokens: estimateTokens(textChars) };
  const status: RelayEnd['status'] = running.reason ? endOf(running, 'error') : upstreamFailed || !done ? 'error' : 'complete';
  const error =
    status === 'complete'
      ? null
      : running.reason === 'idle'
        ? `The model server did not answer within ${deps.idleTimeoutMs / 1000} s`
        : running.reason === 'max_time'
          ? `The answer took longer than the time limit of ${Math.round(deps.maxAnswerMs / 1000)} s`
          : running.reason === 'shutdown'
            ? 'The server shut down before this answer was finished.'
            : (upstreamFailed ?? 'The model server ended the answer before it was complete');
  // A stream that ends in trouble says so in OpenAI's way (an `error` event) before it closes, so SDKs raise.
  if (status === 'error' || status === 'interrupted') {
    if (open())
      out.write(
        `data: ${JSON.stringify({ error: { message: error, type: 'upstream_error', param: null, code: status === 'interrupted' ? 'server_shutting_down' : 'upstream_error' } })}\n\n`,
      );
  }
  if (open()) out.end();
  return { status, firstTokenMs, ...counted, estimated: !usage, error };
}
