import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/database.ts';
import { type ChatTurn, type ModelConnection, ModelError, streamCompletion } from '../llm/model-client.ts';
import { renderMarkdown } from './markdown.ts';
import { type FinalResponse, finalizeResponse, flushPartial, HEARTBEAT_INTERVAL_MS, markStreaming } from './response-store.ts';

/** Partial text reaches the database at most this often, so little is lost if the process dies mid-answer. */
export const FLUSH_INTERVAL_MS = 1_000;

export type GenerationEvent =
  | { type: 'token'; text: string }
  | { type: 'done'; status: 'complete' | 'stopped'; html: string }
  | { type: 'error'; message: string };

type EndReason = 'user' | 'shutdown';

/**
 * One answer being generated. It runs on its own, detached from the HTTP request that started it:
 * a client that disconnects only stops listening, the answer is still completed and stored.
 */
export class Generation {
  readonly controller = new AbortController();
  readonly #listeners = new Set<(e: GenerationEvent) => void>();
  endReason: EndReason | null = null;
  finished: Promise<void> = Promise.resolve();
  /** What has arrived so far, and the last event once finished: a late subscriber is replayed both. */
  text = '';
  #final: GenerationEvent | null = null;

  subscribe(listener: (e: GenerationEvent) => void): () => void {
    if (this.text) listener({ type: 'token', text: this.text });
    if (this.#final) {
      listener(this.#final);
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: GenerationEvent): void {
    if (event.type === 'token') this.text += event.text;
    else this.#final = event;
    for (const listener of this.#listeners) listener(event);
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
}

/** The answers this process is generating, by response id (Stop and shutdown reach them here). */
export class GenerationRegistry {
  readonly #running = new Map<number, Generation>();
  readonly #deps: GenerationDeps;

  constructor(deps: GenerationDeps) {
    this.#deps = deps;
  }

  get(responseId: number): Generation | undefined {
    return this.#running.get(responseId);
  }

  start(responseId: number, connection: ModelConnection, history: ChatTurn[]): Generation {
    const generation = new Generation();
    this.#running.set(responseId, generation);
    generation.finished = runGeneration(this.#deps, generation, responseId, connection, history).finally(() => this.#running.delete(responseId));
    return generation;
  }

  /** On shutdown: answers still running end as `interrupted`, with what they have so far. */
  async stopAll(): Promise<void> {
    const all = [...this.#running.values()];
    for (const g of all) g.stop('shutdown');
    await Promise.all(all.map((g) => g.finished));
  }
}

async function runGeneration(deps: GenerationDeps, gen: Generation, responseId: number, connection: ModelConnection, history: ChatTurn[]): Promise<void> {
  const { db, log } = deps;
  let flushed = '';
  let lastWriteAt = Date.now();
  let usage: { promptTokens: number; completionTokens: number } | null = null;
  // Database writes for this answer happen one at a time and never delay forwarding a token.
  let writes = Promise.resolve();
  const enqueue = (write: () => Promise<void>) => {
    writes = writes.then(write).catch((err) => log.error({ err, responseId }, 'could not save partial answer'));
  };
  const timer = setInterval(() => {
    const changed = gen.text !== flushed;
    if (!changed && Date.now() - lastWriteAt < HEARTBEAT_INTERVAL_MS) return;
    const snapshot = gen.text;
    enqueue(async () => {
      lastWriteAt = Date.now();
      const stopRequested = await flushPartial(db, responseId, changed ? snapshot : null);
      flushed = snapshot;
      if (stopRequested) gen.stop('user'); // asked from another process
    });
  }, FLUSH_INTERVAL_MS);

  let final: Pick<FinalResponse, 'status' | 'error'>;
  try {
    for await (const event of streamCompletion(connection, history, { signal: gen.controller.signal, idleTimeoutMs: deps.idleTimeoutMs })) {
      if (event.type === 'usage') {
        usage = event;
        continue;
      }
      if (gen.text === '') enqueue(() => markStreaming(db, responseId));
      gen.emit({ type: 'token', text: event.text }); // appends to gen.text, the answer so far
    }
    final = { status: 'complete', error: null };
  } catch (err) {
    if (gen.endReason === 'user') final = { status: 'stopped', error: null };
    else if (gen.endReason === 'shutdown') final = { status: 'interrupted', error: 'The server shut down before this answer was finished.' };
    else if (err instanceof ModelError) final = { status: 'error', error: err.message };
    else {
      log.error({ err, responseId }, 'generation failed');
      final = { status: 'error', error: 'The answer failed unexpectedly.' };
    }
  } finally {
    clearInterval(timer);
  }
  await writes;
  const markdown = gen.text;
  const html = renderMarkdown(markdown);
  try {
    await finalizeResponse(db, responseId, {
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
}
