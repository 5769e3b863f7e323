import type { FastifyServerOptions } from 'fastify';
import pretty from 'pino-pretty';
import type { Config } from '../config.ts';

/** The fields of the one line per request (request-log.ts), folded into its message in readable output. */
const REQUEST_FIELDS = ['method', 'url', 'status', 'ms'] as const;

/** `GET /chat/12 200 8.4 ms` for a request line, the message as written for any other. */
export function readableMessage(log: Record<string, unknown>, messageKey: string): string {
  const { method, url, status, ms } = log;
  if (typeof method === 'string' && typeof status === 'number') return `${method} ${String(url)} ${status} ${String(ms)} ms`;
  return String(log[messageKey] ?? '');
}

/**
 * Where the server's log goes. In production, JSON lines on stdout for a collector. Anywhere else, lines a person
 * reads (`[14:31:19] INFO: GET /login 200 3.1 ms`), whether stdout is a terminal or a pipe (`npm start | tee`);
 * colours only at a terminal. pino-pretty runs in this process, not as a worker transport, so the request line can
 * be formatted by a function; development traffic is small.
 */
export function serverLoggerOptions(
  config: Pick<Config, 'LOG_LEVEL' | 'isProduction'>,
  destination: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): FastifyServerOptions['logger'] {
  if (config.isProduction) return { level: config.LOG_LEVEL };
  const stream = pretty({
    destination,
    colorize: Boolean(destination.isTTY),
    sync: true,
    translateTime: 'SYS:HH:MM:ss',
    ignore: ['pid', 'hostname', 'reqId', ...REQUEST_FIELDS].join(','),
    messageFormat: readableMessage,
  });
  return { level: config.LOG_LEVEL, stream };
}
