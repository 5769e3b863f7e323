import type { FastifyServerOptions } from 'fastify';
import { type LoggerOptions, stdSerializers } from 'pino';

export const REDACTED = '[redacted]';

/**
 * Credentials that travel in URLs: the token of a password reset link (the path segment after /reset-password/,
 * also URL-encoded inside a `next=`), and the `token`, `code` and `state` query parameters (OAuth's callback carries
 * `code` and `state`). Whoever reads a log line holding one could use it, so none is ever written.
 */
const RESET_TOKEN = /(reset-password(?:\/|%2F))[^/?#&\s"']+/gi;
const SECRET_PARAM = /([?&](?:token|code|state)=)[^&#\s"']*/gi;
/**
 * A personal API key (src/api) wherever it appears: keys travel only in the Authorization header, but one pasted into
 * a URL or quoted by an error message must not reach the log either. The recognizable prefix is kept.
 */
const API_KEY = /\b(prl_[A-Za-z0-9_-]{0,8})[A-Za-z0-9_-]+/g;
/** A bearer credential quoted anywhere (`Authorization: Bearer …` in an error's text). */
const BEARER = /(Bearer\s+)[^\s"',]+/gi;

/** The one redaction rule: every logged URL, and any text that may quote one (a message, an error), goes through it. */
export function redactSecrets(text: string): string {
  return text.replace(RESET_TOKEN, `$1${REDACTED}`).replace(SECRET_PARAM, `$1${REDACTED}`).replace(API_KEY, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`);
}

/** Header values never logged as they are: the credentials of the API, the metrics scrape and the session. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-csrf-token']);

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number };
}

/**
 * Fastify's own `req` serializer (lib/logger-pino.js), with the URL redacted: Fastify writes `{ req }` with its error
 * lines (an error handler that fails, a header write that fails). Errors get pino's serializer, then their message
 * and stack are redacted (Fastify's "Reply was already sent" names the URL).
 */
const serializers = {
  req(req: LoggedRequest) {
    return {
      method: req.method,
      url: typeof req.url === 'string' ? redactSecrets(req.url) : req.url,
      version: req.headers?.['accept-version'] as string | undefined,
      host: req.host,
      remoteAddress: req.ip,
      remotePort: req.socket?.remotePort,
    };
  },
  err(err: Error) {
    const out = stdSerializers.err(err);
    if (typeof out.message === 'string') out.message = redactSecrets(out.message);
    if (typeof out.stack === 'string') out.stack = redactSecrets(out.stack);
    return out;
  },
};

/** Log messages (`Route GET:/reset-password/… not found`) are text too. */
const hooks: LoggerOptions['hooks'] = {
  logMethod(args, method) {
    return method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : redactHeaders(a))) as Parameters<typeof method>);
  },
};

/** An object logged with `headers` (someone's debug line, a library's error context) loses the credential headers. */
function redactHeaders(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !('headers' in value)) return value;
  const headers = (value as { headers?: unknown }).headers;
  if (typeof headers !== 'object' || headers === null) return value;
  const clean = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, SECRET_HEADERS.has(k.toLowerCase()) ? REDACTED : v]));
  return { ...value, headers: clean };
}

/** The logger options buildApp hands to Fastify, with the redaction installed whatever the caller passed. */
export function withRedaction(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger) return logger;
  const options = logger === true ? {} : (logger as LoggerOptions);
  return { ...options, serializers: { ...options.serializers, ...serializers }, hooks: { ...options.hooks, ...hooks } };
}
