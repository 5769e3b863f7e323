import type { FastifyReply } from 'fastify';

export interface EventStream {
  send(event: string, data: unknown): void;
  end(): void;
  /** Called once when the client goes away (or the stream ends). */
  onClose(listener: () => void): void;
}

/**
 * Server-sent events written straight to the socket (every token is on the time-to-first-token path, so no
 * intermediate stream). The headers Fastify's hooks set so far (security headers) are kept. Writing after the
 * client left is a no-op: the answer goes on being generated and stored whether anyone listens or not.
 */
export function openEventStream(reply: FastifyReply): EventStream {
  reply.hijack();
  const res = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no', // nginx: do not buffer the stream
  });
  const open = () => !res.destroyed && !res.writableEnded;
  return {
    send(event, data) {
      if (open()) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (open()) res.end();
    },
    onClose(listener) {
      res.once('close', listener);
    },
  };
}
