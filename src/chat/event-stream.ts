import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

export interface EventStream {
  send(event: string, data: unknown): void;
  end(): void;
  /** Called once when the client goes away (or the stream ends). */
  onClose(listener: () => void): void;
}

/**
 * Server-sent events over the normal reply (so security headers still apply). Writing after the client left
 * is a no-op: the answer goes on being generated and stored whether anyone listens or not.
 */
export function openEventStream(reply: FastifyReply): EventStream {
  const stream = new PassThrough();
  reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-accel-buffering', 'no') // nginx: do not buffer the stream
    .send(stream);
  const open = () => !stream.destroyed && !stream.writableEnded && !reply.raw.destroyed;
  return {
    send(event, data) {
      if (open()) stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (open()) stream.end();
    },
    onClose(listener) {
      reply.raw.once('close', listener);
    },
  };
}
