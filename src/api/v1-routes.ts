import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { API_KEY_ADDRESS_RULE, apiKeyThrottleKey, reserveAttempt } from '../auth/throttle.ts';
import type { Config } from '../config.ts';
import { sha256Hex } from '../crypto/tokens.ts';
import type { Db } from '../db/database.ts';
import { isDatabaseUnavailable } from '../db/outage.ts';
import { estimateTokens, limitMessage, retryAfterSeconds } from '../groups/usage-limits.ts';
import { createApiKeyBox, toModelConnection } from '../llm/llm-queries.ts';
import { admitUnderLimits, type Caller, modelsForKey, readAdmission } from './api-call-queries.ts';
import { API_KEY_SHAPE } from './api-key-queries.ts';
import type { ApiCallJournal } from './call-journal.ts';
import { completionRequestSchema, describeRequestProblem, requestTextChars } from './completion-request.ts';
import { invalidKey, OpenAiError } from './openai-errors.ts';
import { type ApiCallRegistry, relayCompletion } from './upstream-relay.ts';

/** A conversation sent whole with every call is larger than one chat prompt (the app's body limit). */
const COMPLETION_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

const challenge = 'Bearer realm="parley-api"';

/**
 * `GET /v1/models` and `POST /v1/chat/completions`, OpenAI's wire format (PRODUCT.md). The key in the Authorization
 * header is the only credential: cookies are not read here (isKeyApi), and no key is taken from a URL.
 */
export async function v1Routes(
  app: FastifyInstance,
  opts: { db: Db; config: Config; registry: ApiCallRegistry; journal: ApiCallJournal; upstream: Dispatcher },
): Promise<void> {
  const { db, config, registry, journal, upstream } = opts;
  const box = createApiKeyBox(config.APP_SECRET);
  const relaying = { journal, upstream, registry, idleTimeoutMs: config.LLM_TIMEOUT_S * 1000, maxAnswerMs: config.LLM_MAX_ANSWER_S * 1000 };

  app.setErrorHandler((error: FastifyError | Error, req, reply) => {
    if (error instanceof OpenAiError) return sendOpenAiError(reply, error);
    const fe = error as FastifyError;
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
      return sendOpenAiError(reply, new OpenAiError(fe.statusCode, fe.statusCode === 413 ? 'The request body is too large.' : (fe.message ?? 'Bad request.')));
    if (isDatabaseUnavailable(error)) {
      req.log.warn({ err: { message: error.message } }, 'database unavailable');
      return sendOpenAiError(reply, new OpenAiError(503, 'The service is unavailable; try again in a moment.', { type: 'server_error', retryAfterS: 5 }));
    }
    req.log.error({ err: error }, 'unhandled error');
    return sendOpenAiError(reply, new OpenAiError(500, 'The server had a problem with this request.', { type: 'server_error' }));
  });
  app.setNotFoundHandler((req, reply) =>
    sendOpenAiError(reply, new OpenAiError(404, `Unknown API route: ${req.method} ${req.url.split('?')[0]}`, { code: 'unknown_url' })),
  );

  /** The caller's credential, or 401 before the database is asked when there is no well-formed key. */
  const callerOf = (req: FastifyRequest): Caller => {
    const header = req.headers.authorization ?? '';
    const key = /^Bearer (\S+)$/i.exec(header)?.[1] ?? '';
    if (!API_KEY_SHAPE.test(key)) throw invalidKey();
    return { keyHash: sha256Hex(key), throttleKey: apiKeyThrottleKey(req.ip) };
  };

  /** A wrong key counts against the address (off the success path); the last one allowed locks it. */
  const refuse = async (caller: Caller, locked: boolean): Promise<never> => {
    if (!locked) {
      const reservation = await reserveAttempt(db, caller.throttleKey, API_KEY_ADDRESS_RULE);
      if (reservation.granted) throw invalidKey();
    }
    app.metrics?.throttled('api_key_address');
    throw new OpenAiError(429, 'Too many requests with a wrong API key from this address; try again later.', {
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
      retryAfterS: 15 * 60,
    });
  };

  app.get('/models', async (req) => {
    const caller = callerOf(req);
    const found = await modelsForKey(db, caller);
    if (found.kind !== 'ok') return refuse(caller, found.kind === 'locked');
    return { object: 'list', data: found.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'parley' })) };
  });

  app.post('/chat/completions', { bodyLimit: COMPLETION_BODY_LIMIT_BYTES }, async (req, reply) => {
    const caller = callerOf(req);
    // The admission's read goes out first, and the request is checked while it runs: it needs only the key and the
    // model's name. It is awaited on every path below; the catch only keeps a throw in between from leaving it unhandled.
    const model = (req.body as { model?: unknown } | null)?.model;
    const reading = readAdmission(db, caller, typeof model === 'string' ? model : '');
    reading.catch(() => {});
    const parsed = completionRequestSchema.safeParse(req.body);
    const first = await reading;
    // Who asks comes first: a wrong key gets 401 whatever it sent.
    if (first.kind === 'locked' || first.kind === 'unauthenticated') return refuse(caller, first.kind === 'locked');
    if (!parsed.success) {
      const { message, param } = describeRequestProblem(parsed.error);
      throw new OpenAiError(400, message, { param });
    }
    const request = parsed.data;
    const admission = first.kind === 'limited' ? await admitUnderLimits(db, caller, request.model, estimateTokens(requestTextChars(request))) : first;
    switch (admission.kind) {
      case 'locked':
      case 'unauthenticated':
        return refuse(caller, admission.kind === 'locked');
      case 'unknown-model':
        throw new OpenAiError(404, `The model '${request.model}' does not exist or is not enabled. GET /v1/models lists yours.`, {
          code: 'model_not_found',
          param: 'model',
        });
      case 'forbidden-model':
        throw new OpenAiError(403, `You may not use the model '${request.model}' (it is turned off, or not open to you).`, {
          type: 'permission_error',
          code: 'model_not_allowed',
          param: 'model',
        });
      case 'over-limit':
        // The same limits as chat, web and API together (PRODUCT.md); nothing was recorded or reserved.
        throw new OpenAiError(429, limitMessage(admission.refusal, config.STATS_TIMEZONE), {
          type: 'rate_limit_error',
          code: 'rate_limit_exceeded',
          retryAfterS: retryAfterSeconds(admission.refusal),
        });
    }
    // The first token's time counts from the recorded start (tinf_start), as chat's does from begin_answer.
    const startedAt = performance.now();
    journal.begin(admission);
    let connection: ReturnType<typeof toModelConnection>;
    try {
      connection = toModelConnection(box, admission.connection);
    } catch (err) {
      req.log.error({ err }, 'an API call found its model key unreadable');
      const error = new OpenAiError(502, 'The model connection is misconfigured; tell your administrator.', { type: 'upstream_error', code: 'upstream_error' });
      const failed = { status: 'error', firstTokenMs: null, promptTokens: null, completionTokens: null, estimated: false, error: error.message } as const;
      journal.end(admission, { ...failed, elapsedMs: performance.now() - startedAt });
      throw error;
    }
    await relayCompletion({ ...relaying, log: req.log, metrics: app.metrics }, { admitted: admission, connection, request, startedAt }, reply);
    return reply;
  });
}

function sendOpenAiError(reply: FastifyReply, error: OpenAiError): FastifyReply {
  if (error.status === 401) reply.header('www-authenticate', challenge);
  if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
  return reply.code(error.status).send(error.body);
}
