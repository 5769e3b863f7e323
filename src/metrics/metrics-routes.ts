import type { FastifyInstance, FastifyRequest } from 'fastify';
import { constantTimeEqual, sha256Hex } from '../crypto/tokens.ts';
import { type Db, poolStatsOf } from '../db/database.ts';
import { AppMetrics } from './metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's counters; always there (recording costs next to nothing), served only when METRICS_TOKEN is set. */
    metrics: AppMetrics;
  }
}

/** Requests Fastify found no route for: one label value, never the raw URL (every scanner's path would be a series). */
const UNMATCHED = 'unmatched';

/**
 * The metrics slice: `app.metrics` for the slices that record, a count of every answered request by route pattern,
 * and GET /metrics in Prometheus text format when METRICS_TOKEN is set. Without the token the route does not exist
 * (404 like any unknown path). Called on the root instance before the slices register, so its hook sees them all.
 */
export function registerMetrics(app: FastifyInstance, opts: { db: Db; token: string | undefined }): void {
  const metrics = new AppMetrics({ poolStats: () => poolStatsOf(opts.db), processMetrics: opts.token !== undefined });
  app.decorate('metrics', metrics);

  // onResponse runs when the last byte is written (a streamed answer too: Fastify listens for the socket's finish).
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? UNMATCHED;
    metrics.httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  const token = opts.token;
  if (token === undefined) return;
  // logLevel warn: the one-line-per-request log (info) leaves out scrapes, every 15 s from each Prometheus.
  // No session and no CSRF token: a GET without cookies, whose only credential is the bearer token.
  app.get('/metrics', { logLevel: 'warn' }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const sent = bearerToken(req);
    if (sent === undefined || !sameToken(sent, token)) {
      // RFC 6750 §3: a missing token gets the challenge alone, a wrong one is named invalid_token.
      const challenge = sent === undefined ? 'Bearer realm="metrics"' : 'Bearer realm="metrics", error="invalid_token"';
      return reply.code(401).header('www-authenticate', challenge).type('text/plain; charset=utf-8').send('A valid bearer token is required.\n');
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  return (typeof header === 'string' && /^Bearer +(\S+) *$/i.exec(header)?.[1]) || undefined;
}

/** Compared as SHA-256 digests: equal lengths always, so the time taken says nothing about the token's length either. */
function sameToken(sent: string, token: string): boolean {
  return constantTimeEqual(sha256Hex(sent), sha256Hex(token));
}
