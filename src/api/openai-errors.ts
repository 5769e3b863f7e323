/**
 * Errors of /v1 in OpenAI's shape (`{"error":{"message","type","param","code"}}`), so the SDKs raise their typed
 * errors (AuthenticationError, NotFoundError, RateLimitError…) with our message.
 */
export class OpenAiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterS: number | undefined;

  constructor(status: number, message: string, opts: { type?: string; code?: string | null; param?: string | null; retryAfterS?: number } = {}) {
    super(message);
    this.status = status;
    this.type = opts.type ?? 'invalid_request_error';
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.retryAfterS = opts.retryAfterS;
  }

  get body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidKey = () =>
  new OpenAiError(401, 'Invalid API key: send a valid, unrevoked, unexpired Parley key as "Authorization: Bearer prl_…".', {
    code: 'invalid_api_key',
  });
