import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A local OpenAI-compatible server for tests, benchmarks and development (`npm run dev:fake-llm`). It speaks
 * the subset Parley uses (`GET /v1/models`, `POST /v1/chat/completions`, streamed or not) over real HTTP, so the
 * SDK, its SSE parser and our error mapping are exercised exactly as against Ollama or OpenAI.
 *
 * Its answers are deterministic, and directives in the last user message switch its behaviour, so one server
 * serves every test: [[fail]] [[status:N]] [[stall]] [[slow:MS]] [[burst:N]] [[malformed]] [[drop]] [[cut]] [[long:N]]
 * [[echo-history]] [[nul]] [[surrogates]] [[tool]] [[no-usage]].
 * ([[burst:N]] sends the first N chunks without the [[slow]] pause: a long text at once, then a slow trickle.)
 * ([[cut]] ends the response cleanly after two chunks, without finish_reason or [DONE]: a truncated answer.
 * [[nul]] puts a U+0000 in the answer; [[surrogates]] a lone high and a lone low surrogate, and a pair split
 * across two chunks — what a model's byte-level tokens can produce. [[tool]] with `tools` in the request calls the
 * first tool, its arguments split over two deltas, as OpenAI streams them. [[no-usage]]: no `usage` at all, as some
 * servers do.)
 */
export const FAKE_MODEL_IDS = ['fake-echo', 'fake-large'] as const;

export interface FakeLlmOptions {
  port?: number;
  apiKey?: string;
  chunkDelayMs?: number;
  /** Like a real model's context window: a request whose messages hold more characters gets HTTP 400. */
  maxContextChars?: number;
}

export interface FakeLlm {
  readonly baseUrl: string;
  /** Chat completion requests received so far (failed ones included). */
  readonly requests: number;
  /** The JSON body of the last chat completion request. */
  readonly lastRequest: unknown;
  /** Streams closed before their end: the client went away (an answer the app stopped, say), or [[drop]]. */
  readonly abandonedStreams: number;
  close(): Promise<void>;
}

interface Directives {
  fail: boolean;
  status?: number;
  stall: boolean;
  slowMs?: number;
  burst?: number;
  malformed: boolean;
  drop: boolean;
  cut: boolean;
  long?: number;
  echoHistory: boolean;
  nul: boolean;
  surrogates: boolean;
  tool: boolean;
  noUsage: boolean;
}

interface WireMessage {
  role?: unknown;
  content?: unknown;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Chunks sent before [[stall]], [[malformed]], [[drop]] and [[cut]] misbehave: enough to prove a partial answer was kept. */
const GOOD_CHUNKS_BEFORE_TROUBLE = 2;
const FIXED_PARAGRAPH = 'This answer comes from the fake model server. It is the same every time, so tests can compare it word for word.';
const FIXED_CODE = "```ts\nconst answer: number = 42;\nconsole.log('The answer is', answer);\n```";
const LONG_WORDS = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do', 'eiusmod', 'tempor'];

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
  return '';
}

function parseDirectives(text: string): Directives {
  const number = (name: string) => {
    const m = new RegExp(`\\[\\[${name}:(\\d+)\\]\\]`).exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return {
    fail: text.includes('[[fail]]'),
    status: number('status'),
    stall: text.includes('[[stall]]'),
    slowMs: number('slow'),
    burst: number('burst'),
    malformed: text.includes('[[malformed]]'),
    drop: text.includes('[[drop]]'),
    cut: text.includes('[[cut]]'),
    long: number('long'),
    echoHistory: text.includes('[[echo-history]]'),
    nul: text.includes('[[nul]]'),
    surrogates: text.includes('[[surrogates]]'),
    tool: text.includes('[[tool]]'),
    noUsage: text.includes('[[no-usage]]'),
  };
}

/** Word-sized pieces (each word keeps the whitespace after it), so joining them gives the text back exactly. */
export function splitIntoChunks(text: string): string[] {
  return text.match(/\s+|\S+\s*/gy) ?? [];
}

/** The answer, already cut into chunks: what a request with these messages always gets. */
export function fakeAnswerChunks(messages: WireMessage[]): string[] {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const said = textOf(lastUser?.content);
  const d = parseDirectives(said);
  if (d.long !== undefined) {
    return Array.from({ length: d.long }, (_, i) => `${LONG_WORDS[i % LONG_WORDS.length]}${(i + 1) % 12 === 0 ? '.\n\n' : ' '}`);
  }
  if (d.echoHistory) {
    const lines = messages.map((m, i) => `${i + 1}. ${String(m.role)}: ${textOf(m.content)}`);
    return splitIntoChunks(`History (${messages.length} messages):\n${lines.join('\n')}`);
  }
  const cleaned = said.replace(/\[\[[a-z-]+(?::\d+)?\]\]/g, '').trim();
  const chunks = splitIntoChunks(`You said: ${cleaned}\n\n${FIXED_PARAGRAPH}\n\n${FIXED_CODE}\n`);
  if (d.nul) chunks.splice(1, 0, 'a NUL \u0000 here ');
  if (d.surrogates) chunks.splice(1, 0, 'lone high \ud800 ', 'lone low \udc00 ', 'split \ud83d', '\ude00 pair ');
  return chunks;
}

function contextChars(messages: WireMessage[]): number {
  return messages.reduce((n, m) => n + textOf(m.content).length, 0);
}

function countWords(messages: WireMessage[]): number {
  return messages.reduce((n, m) => n + (textOf(m.content).match(/\S+/g)?.length ?? 0), 0);
}

/** The first tool's name when the request offers tools and asks for a call with [[tool]]; its fixed arguments. */
function toolToCall(body: Record<string, unknown>, d: Directives): string | null {
  if (!d.tool || !Array.isArray(body.tools)) return null;
  const name = (body.tools[0] as { function?: { name?: unknown } } | undefined)?.function?.name;
  return typeof name === 'string' ? name : null;
}
export const FAKE_TOOL_ARGUMENTS = '{"city":"Paris"}';
const FAKE_TOOL_CALL_ID = 'call_fake_1';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendError(res: ServerResponse, status: number, message: string, type: string, code: string | null = null): void {
  sendJson(res, status, { error: { message, type, param: null, code } });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    parts.push(part);
  }
  return JSON.parse(Buffer.concat(parts).toString('utf8'));
}

/**
 * Resolves once the data is handed to the socket: a huge [[long:N]] answer does not pile up in memory, and the
 * chunks before a [[drop]] really leave before the socket is destroyed.
 */
function write(res: ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => {
    res.once('close', resolve);
    res.write(data, () => {
      res.off('close', resolve);
      resolve();
    });
  });
}

async function streamAnswer(
  res: ServerResponse,
  body: Record<string, unknown>,
  messages: WireMessage[],
  delayMs: number,
  onAbandoned: () => void,
): Promise<void> {
  const d = parseDirectives(textOf([...messages].reverse().find((m) => m.role === 'user')?.content));
  const chunks = fakeAnswerChunks(messages);
  const id = `chatcmpl-fake-${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const model = typeof body.model === 'string' ? body.model : FAKE_MODEL_IDS[0];
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`;
  let gone = false;
  res.on('close', () => {
    gone = true;
    if (!res.writableFinished) onAbandoned();
  });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  await write(res, frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
  const usage = (completionTokens: number) => {
    const promptTokens = countWords(messages);
    return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  };
  const wantsUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true && !d.noUsage;
  const tool = toolToCall(body, d);
  if (tool !== null) {
    const half = FAKE_TOOL_ARGUMENTS.length >> 1;
    const call = (fn: Record<string, string>, first: boolean) => [
      { index: 0, delta: { tool_calls: [{ index: 0, ...(first ? { id: FAKE_TOOL_CALL_ID, type: 'function' } : {}), function: fn }] }, finish_reason: null },
    ];
    await write(res, frame(call({ name: tool, arguments: FAKE_TOOL_ARGUMENTS.slice(0, half) }, true)));
    await sleep(delayMs);
    await write(res, frame(call({ arguments: FAKE_TOOL_ARGUMENTS.slice(half) }, false)));
    await write(res, frame([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]));
    if (wantsUsage) await write(res, frame([], { usage: usage(5) }));
    return void res.end('data: [DONE]\n\n');
  }
  for (const [i, text] of chunks.entries()) {
    if (i === GOOD_CHUNKS_BEFORE_TROUBLE) {
      if (d.stall) return; // the client's idle timeout (or its going away) is what ends this
      if (d.malformed) return void res.end('data: {not json\n\n');
      if (d.drop) return void res.socket?.destroy();
      if (d.cut) return void res.end();
    }
    // Always give the event loop a turn, as a real server's network writes would.
    await sleep(i < (d.burst ?? 0) ? 0 : (d.slowMs ?? delayMs));
    if (gone) return;
    await write(res, frame([{ index: 0, delta: { content: text }, finish_reason: null }]));
  }
  await write(res, frame([{ index: 0, delta: {}, finish_reason: 'stop' }]));
  if (wantsUsage) await write(res, frame([], { usage: usage(chunks.length) }));
  res.end('data: [DONE]\n\n');
}

function answerWhole(res: ServerResponse, body: Record<string, unknown>, messages: WireMessage[]): void {
  const d = parseDirectives(textOf([...messages].reverse().find((m) => m.role === 'user')?.content));
  const chunks = fakeAnswerChunks(messages);
  const promptTokens = countWords(messages);
  const tool = toolToCall(body, d);
  const choice =
    tool === null
      ? { index: 0, message: { role: 'assistant', content: chunks.join('') }, finish_reason: 'stop' }
      : {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: FAKE_TOOL_CALL_ID, type: 'function', function: { name: tool, arguments: FAKE_TOOL_ARGUMENTS } }],
          },
          finish_reason: 'tool_calls',
        };
  const completionTokens = tool === null ? chunks.length : 5;
  sendJson(res, 200, {
    id: `chatcmpl-fake-${Date.now().toString(36)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof body.model === 'string' ? body.model : FAKE_MODEL_IDS[0],
    choices: [choice],
    ...(d.noUsage ? {} : { usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } }),
  });
}

export async function startFakeLlm(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  const state = { requests: 0, lastRequest: undefined as unknown, abandonedStreams: 0 };
  const delayMs = opts.chunkDelayMs ?? 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return sendError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: FAKE_MODEL_IDS.map((id) => ({ id, object: 'model', created: 0, owned_by: 'parley' })) });
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') return sendError(res, 404, `No route for ${req.method} ${path}`, 'invalid_request_error');

    state.requests++;
    let body: Record<string, unknown>;
    try {
      body = (await readJson(req)) as Record<string, unknown>;
    } catch {
      return sendError(res, 400, 'The request body is not valid JSON.', 'invalid_request_error');
    }
    state.lastRequest = body;
    const messages = Array.isArray(body?.messages) ? (body.messages as WireMessage[]) : [];
    if (messages.length === 0) return sendError(res, 400, "'messages' must be a non-empty array.", 'invalid_request_error');
    const d = parseDirectives(textOf([...messages].reverse().find((m) => m.role === 'user')?.content));
    if (d.fail) return sendError(res, 500, 'The fake model failed on purpose.', 'server_error');
    if (d.status !== undefined && d.status >= 400 && d.status <= 599)
      return sendError(res, d.status, `The fake model answered ${d.status} on purpose.`, 'api_error');
    if (opts.maxContextChars !== undefined && contextChars(messages) > opts.maxContextChars) {
      const message = `This model's maximum context length is ${opts.maxContextChars} characters, but the messages have ${contextChars(messages)}.`;
      return sendError(res, 400, message, 'invalid_request_error', 'context_length_exceeded');
    }
    if (body.stream === true) return streamAnswer(res, body, messages, delayMs, () => state.abandonedStreams++);
    if (d.stall) return; // never answers; the client's timeout ends it
    return answerWhole(res, body, messages);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 500, 'The fake model server broke.', 'server_error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    get lastRequest() {
      return state.lastRequest;
    },
    get abandonedStreams() {
      return state.abandonedStreams;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Stalled streams and keep-alive sockets would otherwise hold close() open forever.
        server.closeAllConnections();
      }),
  };
}

// A promise, not a top-level await: the test files importing this module share processes, each loaded with require()
// (test/file-group.ts), which refuses a module with top-level await anywhere in its graph.
if (import.meta.main) {
  startFakeLlm({ port: Number(process.env.FAKE_LLM_PORT ?? 11435) }).then(
    (fake) => console.log(`Fake OpenAI-compatible server on ${fake.baseUrl} (models: ${FAKE_MODEL_IDS.join(', ')})`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
