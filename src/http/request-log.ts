import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { redactSecrets } from './log-redaction.ts';

/**
 * One log line per request, written when it is answered: method, url, status and milliseconds (Fastify's default
 * writes two, "incoming request" with the headers and "request completed"). Errors still go out at `error` level.
 * The URL is redacted (log-redaction.ts): a reset link's token or an OAuth code in a log line is a credential.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, url: redactSecrets(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request');
  }
}
