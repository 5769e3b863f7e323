import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../db/outage.ts';
import { html } from '../views/html.ts';
import { card } from '../views/layout.ts';
import { HttpError, RedirectError, SecondFactorRequiredError, TooManyRequestsError, UnauthenticatedError } from './errors.ts';
import { wantsJson } from './request-kind.ts';

const genericMessages: Record<number, string> = {
  400: 'The request could not be understood.',
  401: 'Sign in to continue.',
  403: 'You do not have access to this page.',
  404: 'This page does not exist.',
  413: 'The request is too large.',
  415: 'This kind of content is not accepted here.',
  429: 'Too many attempts. Try again later.',
  500: 'Something went wrong on our side. It has been logged.',
  503: 'The service is unavailable for a moment. Try again in a few seconds.',
};

/** A client may retry a 503 after this long: a database restart takes a few seconds. */
const UNAVAILABLE_RETRY_AFTER_S = 5;

function errorPage(req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply {
  if (wantsJson(req)) return reply.code(status).send({ error: message });
  const title = status === 404 ? 'Not found' : status >= 500 ? 'Server error' : 'Request refused';
  return reply.page({ title, body: card(title, html`<p class="mb-3">${message}</p><a class="btn btn-primary" href="/">Go to the start page</a>`) }, status);
}

/**
 * The one place thrown guards and errors become answers. Only messages we wrote reach the client;
 * an unexpected error is logged with its stack and answered with a generic 500.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | Error, req, reply) => {
    if (error instanceof RedirectError) return reply.redirect(error.location, 303);
    if (error instanceof SecondFactorRequiredError && !wantsJson(req)) return reply.redirect(error.location, 303);
    if (error instanceof UnauthenticatedError && !wantsJson(req)) {
      const next = req.method === 'GET' ? `?next=${encodeURIComponent(req.url)}` : '';
      return reply.redirect(`/login${next}`, 303);
    }
    if (error instanceof TooManyRequestsError) reply.header('retry-after', String(error.retryAfterS));
    if (error instanceof HttpError) return errorPage(req, reply, error.statusCode, error.message);

    const fe = error as FastifyError;
    if (fe.validation) return errorPage(req, reply, 400, `Invalid input: ${fe.message}`);
    const status = fe.statusCode;
    if (status && status >= 400 && status < 500) {
      // Fastify's own client errors (body too large, bad JSON, unsupported content type): safe to name.
      return errorPage(req, reply, status, genericMessages[status] ?? fe.message);
    }
    if (isDatabaseUnavailable(error)) {
      // Not a bug to chase but an outage (the database restarting, down, or out of connections): one line, no
      // stack, and an answer that says "try again" (README "Failure behaviour"). /readyz says the same meanwhile.
      req.log.warn({ err: { message: error.message, code: (error as { code?: unknown }).code } }, 'database unavailable');
      reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
      return errorPage(req, reply, 503, genericMessages[503] as string);
    }
    req.log.error({ err: error }, 'unhandled error');
    return errorPage(req, reply, 500, genericMessages[500] as string);
  });

  app.setNotFoundHandler((req, reply) => errorPage(req, reply, 404, genericMessages[404] as string));
}
