import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/database.ts';
import { isDatabaseUnavailable, type OutageLog } from '../db/outage.ts';
import { recordAnswerOutcome } from '../llm/llm-queries.ts';
import { type ChatTurn, isConnectionFailure, type ModelConnection, ModelError, streamCompletion } from '../llm/model-client.ts';
import type { AppMetrics } from '../metrics/metrics.ts';
import { escapeHtml } from '../views/html.ts';
import { renderMarkdown } from './markdown.ts';
import { appendPartial, type FinalResponse, finalizeResponse, flushPartial, HEARTBEAT_INTERVAL_MS, markStreaming, STALE_AFTER_S } from './response-store.ts';

/**
 * While text arrives, what has arrived is saved once per tick: a crash loses at most this long of an answer (plus
 * the one write under way). Each save sends only the text since the last one (appendPartial), so the bytes sent
 * for an answer are its length, whatever its length; the database still rewrites the stored value each time
 * (`npm run bench -- flush` measures both at 200 concurrent answers; decision record 014).
 */
export const FLUSH_INTERVAL_MS = 1_000;

export type GenerationEvent =
  | { type: 'token'; text: string }
  | { type: 'done'; status: 'complete' | 'stopped'; html: string }
  | { type: 'error'; message: string };

/** Why an answer ended before the model finished it: the first reason given wins. */
type EndReason = 'user' | 'shutdown' | 'max_chars' | 'max_time';

/**
 * One answer being generated. It runs on its own, detached from the HTTP request that started it:
 * a client that disconnects only stops listening, the answer is still completed and stored.
 */
export class Generation {
  readonly controller = new AbortController();
  readonly #log: FastifyBaseLogger | undefined;
  readonly #listeners = new Set<(e: GenerationEvent) => void>();
  endReason: EndReason | null = null;
  finished: Promise<void> = Promise.resolve();
  /** What has arrived so far, and the last event once finished: a late subscriber is replayed both. */
  text = '';
  #final: GenerationEvent | null = null;

  constructor(log?: FastifyBaseLogger) {
    this.#log = log;
  }

  subscribe(listener: (e: GenerationEvent) => void): () => void {
    if (this.text) listener({ type: 'token', text: this.text });
    if (this.#final) {
      listener(this.#final);
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tokens append to the text; the first `done` or `error` is the last event, later ones are ignored. */
  emit(event: GenerationEvent): void {
    if (this.#final) return;
    if (event.type === 'token') this.text += event.text;
    else this.#final = event;
    for (const listener of this.#listeners) {
      // One broken listener (a client's stream) must not end the answer for the others, nor the answer itself.
      try {
        listener(event);
      } catch (err) {
        this.#listeners.delete(listener);
        this.#log?.error({ err }, 'an answer listener failed and was removed');
      }
    }
  }

  stop(reason: EndReason): void {
    this.endReason ??= reason;
    this.controller.abort();
  }
}

export interface GenerationDeps {
  db: Db;
  log: FastifyBaseLogger;
  idleTimeoutMs: number;
  /** MAX_ANSWER_CHARS and LLM_MAX_ANSWER_S: beyond either the model is stopped and the answer ends as an error. */
  maxAnswerChars: number;
  maxAnswerMs: number;
  /** FLUSH_INTERVAL_MS unless given (tests and the flush benchmark tick faster). */
  flushIntervalMs?: number;
  /** renderMarkdown unless given. */
  renderMarkdown?: (markdown: string) => string;
  /** The app's /metrics counters (answers by model and status, time to first token, inference time, in flight). */
  metrics?: AppMetrics;
  /** Where a save failing because the database is away is counted rather than logged each second (the app's). */
  outage?: OutageLog;
}

/** The answers this process is generating, by response id (Stop and shutdown reach them here). */
export class GenerationRegistry {
  readonly #running = new Map<number, Generation>();
  readonly #deps: GenerationDeps;
  readonly #instance: { readonly owner: number | null };

  /** `instance`: this process's instance lock (src/db/instance-lock.ts), whose id each answer begun here records. */
  constructor(deps: GenerationDeps, instance: { readonly owner: number | null } = { owner: null }) {
    this.#deps = deps;
    this.#instance = instance;
  }

  get owner(): number | null {
    return this.#instance.owner;
  }

  get(responseId: number): Generation | undefined {
    return this.#running.get(responseId);
  }

  start(responseId: number, connection: ModelConnection, history: ChatTurn[]): Generation {
    const { log, metrics } = this.#deps;
    const generation = new Generation(log);
    this.#running.set(responseId, generation);
    metrics?.answersInFlight.inc();
    // Detached from any request: a failure after the model's answer (rendering, storing, a listener) is logged here
    // and ends the stream with an error event; as an unhandled rejection it would end the process.
    generation.finished = runGeneration(this.#deps, generation, responseId, connection, history)
      .catch((err) => {
        log.error({ err, responseId }, 'the answer failed after the model finished');
        generation.emit({ type: 'error', message: 'The answer could not be finished. Try again.' });
      })
      .finally(() => {
        this.#running.delete(responseId);
        metrics?.answersInFlight.dec();
      });
    return generation;
  }

  /**
   * On shutdown: running answers get `graceMs` to finish; those still running then end as `interrupted` with what
   * they have so far, and their streams get an `error` event. One begun while stopping is stopped too.
   */
  async stopAll(graceMs = 0): Promise<void> {
    const finished = (all: Generation[]) => Promise.allSettled(all.map((g) => g.finished));
    if (graceMs > 0 && this.#running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([finished([...this.#running.values()]), graceOver]);
      clearTimeout(timer);
    }
    while (this.#running.size > 0) {
      const all = [...this.#running.values()];
      for (const g of all) g.stop('shutdown');
      await finished(all);
    }
  }
}

/** How an answer that ended early is stored: its status and the reason shown to the user. */
function endedEarly(reason: EndReason, deps: GenerationDeps): Pick<FinalResponse, 'status' | 'error'> {
  switch (reason) {
    case 'user':
      return { status: 'stopped', error: null };
    case 'shutdown':
      return { status: 'interrupted', error: 'The server shut down before this answer was finished.' };
    case 'max_chars':
      return { status: 'error', error: `The answer reached the length limit of ${deps.maxAnswerChars.toLocaleString('en')} characters and was stopped there.` };
    case 'max_time':
      return { status: 'error', error: `The answer took longer than the time limit of ${Math.round(deps.maxAnswerMs / 1000)} s and was stopped there.` };
  }
}

/** The first `chars` UTF-16 units of `text`, one fewer if the cut would split a surrogate pair. */
function cutAt(text: string, chars: number): string {
  const code = text.charCodeAt(chars - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? chars - 1 : chars);
}

/**
 * What of an answer's text the database holds: its first `chars` (UTF-16 units, as `text.length` counts them) are
 * `bytes` bytes of UTF-8 there, or `bytes` is null when that is not known (the placeholder before the first save, a
 * save that failed — it may have committed anyway): then the next save writes the whole text.
 */
function savedText() {
  const saved = {
    chars: 0,
    bytes: null as number | null,
    /** Saves `text`, which begins with what is saved; returns whether a Stop was asked. */
    async save(db: Db, responseId: number, text: string): Promise<boolean> {
      const known = saved.bytes;
      saved.bytes = null;
      const delta = text.slice(saved.chars);
      let stopRequested = known === null ? null : await appendPartial(db, responseId, delta, known);
      let bytes = (known ?? 0) + Buffer.byteLength(delta);
      if (stopRequested === null) {
        stopRequested = await flushPartial(db, responseId, text);
        bytes = Buffer.byteLength(text);
      }
      saved.chars = text.length;
      saved.bytes = bytes;
      return stopRequested;
    },
  };
  return saved;
}

/** Pause between tries of an answer's final write while the database is unavailable. */
const FINAL_WRITE_RETRY_MS = 500;

/**
 * The final write, tried again while the database is unavailable (a restart, a failover): the model's whole answer
 * is in memory and the user has seen it, so it is kept until the database is back rather than lost to a sweep that
 * would leave only the last partial flush. Not past STALE_AFTER_S: by then a sweep may end the answer anyway
 * (the write guards on an active status, so it never overwrites that), and shutdown does not wait that long.
 */
async function storeFinalResponse(db: Db, responseId: number, response: FinalResponse): Promise<void> {
  for (const giveUpAt = Date.now() + STALE_AFTER_S * 1000; ; await sleep(FINAL_WRITE_RETRY_MS)) {
    try {
      return await finalizeResponse(db, responseId, response);
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() >= giveUpAt) throw err;
    }
  }
}

async function runGeneration(deps: GenerationDeps, gen: Generation, responseId: number, connection: ModelConnection, history: ChatTurn[]): Promise<void> {
  const { db, log, metrics } = deps;
  const startedAt = performance.now();
  const secondsSinceStart = () => (performance.now() - startedAt) / 1000;
  let flushing = false;
  let lastWriteAt = Date.now();
  let usage: { promptTokens: number; completionTokens: number } | null = null;
  // Database writes for this answer happen one at a time and never delay forwarding a token.
  let writes = Promise.resolve();
  const enqueue = (write: () => Promise<void>) => {
    writes = writes.then(write).then(
      () => deps.outage?.succeeded(),
      (err) => {
        if (!deps.outage?.failed('partial answer saves', err)) log.error({ err, responseId }, 'could not save partial answer');
      },
    );
  };
  const saved = savedText();
  const timer = setInterval(() => {
    if (flushing) return; // a slow database gets fewer flushes, not a queue of them
    const text = gen.text;
    // Every tick that saw new text saves it; a silent model still gets its heartbeat (and a Stop asked from
    // another process is seen) every HEARTBEAT_INTERVAL_MS.
    if (text.length === saved.chars && Date.now() - lastWriteAt < HEARTBEAT_INTERVAL_MS) return;
    flushing = true;
    enqueue(async () => {
      try {
        lastWriteAt = Date.now();
        const stopRequested = text.length === saved.chars ? await flushPartial(db, responseId, null) : await saved.save(db, responseId, text);
        if (stopRequested) gen.stop('user'); // asked from another process
      } finally {
        flushing = false;
      }
    });
  }, deps.flushIntervalMs ?? FLUSH_INTERVAL_MS);
  const deadline = setTimeout(() => gen.stop('max_time'), deps.maxAnswerMs);

  let final: Pick<FinalResponse, 'status' | 'error'>;
  /** What this answer tells the admin's list about the connection (recordAnswerOutcome); undefined: nothing. */
  let health: string | null | undefined;
  try {
    for await (const event of streamCompletion(connection, history, { signal: gen.controller.signal, idleTimeoutMs: deps.idleTimeoutMs })) {
      if (event.type === 'usage') {
        usage = event;
        continue;
      }
      if (gen.text === '') {
        enqueue(() => markStreaming(db, responseId));
        metrics?.timeToFirstToken.observe({ model: connection.name }, secondsSinceStart());
      }
      const room = deps.maxAnswerChars - gen.text.length;
      if (event.text.length > room) {
        const kept = cutAt(event.text, room);
        if (kept) gen.emit({ type: 'token', text: kept });
        gen.stop('max_chars'); // aborts the request: the model stops generating
        break;
      }
      gen.emit({ type: 'token', text: event.text }); // appends to gen.text, the answer so far
    }
    final = gen.endReason === 'max_chars' ? endedEarly('max_chars', deps) : { status: 'complete', error: null };
    health = null;
  } catch (err) {
    if (gen.endReason) final = endedEarly(gen.endReason, deps);
    else if (err instanceof ModelError) {
      final = { status: 'error', error: err.message };
      if (gen.text === '' && isConnectionFailure(err)) health = err.message;
    } else {
      log.error({ err, responseId }, 'generation failed');
      final = { status: 'error', error: 'The answer failed unexpectedly.' };
    }
  } finally {
    clearInterval(timer);
    clearTimeout(deadline);
  }
  metrics?.answers.inc({ model: connection.name, status: final.status });
  if (final.status === 'complete') metrics?.inferenceTime.observe({ model: connection.name }, secondsSinceStart());
  await writes;
  const markdown = gen.text;
  let html: string;
  try {
    html = (deps.renderMarkdown ?? renderMarkdown)(markdown);
  } catch (err) {
    // The text is still the answer: keep it, shown as plain text.
    log.error({ err, responseId }, 'could not render the answer; stored as plain text');
    html = `<pre>${escapeHtml(markdown)}</pre>`;
  }
  try {
    await storeFinalResponse(db, responseId, {
      ...final,
      markdown,
      html,
      promptTokens: usage?.promptTokens ?? null,
      completionTokens: usage?.completionTokens ?? null,
    });
  } catch (err) {
    log.error({ err, responseId }, 'could not store the finished answer');
  }
  if (final.status === 'complete' || final.status === 'stopped') gen.emit({ type: 'done', status: final.status, html });
  else gen.emit({ type: 'error', message: final.error ?? 'The answer failed.' });
  // After the user has the answer: the admin's health column is news, not part of the answer.
  if (health !== undefined)
    await recordAnswerOutcome(db, connection.id, health).catch((err) => log.error({ err, responseId }, 'could not record model health'));
}
