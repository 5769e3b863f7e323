import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** esbuild's `[name]-[hash]` (scripts/build-web.ts): eight base32 characters before the extension. */
const HASHED_NAME = /-[A-Z2-7]{8}\.[a-z.]+$/;
const YEAR_S = 365 * 24 * 60 * 60;

/**
 * Caching, decided per file. A bundle in build/ has its content hash in its name: a changed bundle is a new URL, so
 * it may be cached for a year and never revalidated (`immutable`). Every other file (our CSS, Bootstrap, the
 * manifest) keeps its name across deploys: `no-cache` makes the browser ask each time, which costs a 304 (ETag and
 * Last-Modified are sent) and means a deploy is seen at once, not up to an hour later with stale styles.
 */
function setCacheHeaders(reply: FastifyReply, filePath: string): void {
  const hashed = path.basename(path.dirname(filePath)) === 'build' && HASHED_NAME.test(path.basename(filePath));
  reply.header('cache-control', hashed ? `public, max-age=${YEAR_S}, immutable` : 'no-cache');
}

/**
 * /static/ (public/, bundles in public/build/) and /static/vendor/ (Bootstrap's files only). Static answers are the
 * same for everyone and carry no cookie: csrf.ts sets its cookie only with a token, and the session loader skips /static/.
 */
export async function registerStaticFiles(app: FastifyInstance, root: string): Promise<void> {
  await app.register(fastifyStatic, { root: path.join(root, 'public'), prefix: '/static/', cacheControl: false, setHeaders: setCacheHeaders });
  await app.register(fastifyStatic, {
    root: path.join(root, 'node_modules/bootstrap/dist'),
    prefix: '/static/vendor/',
    decorateReply: false,
    cacheControl: false,
    setHeaders: setCacheHeaders,
    allowedPath: (p) => ['/css/bootstrap.min.css', '/css/bootstrap.min.css.map', '/js/bootstrap.bundle.min.js', '/js/bootstrap.bundle.min.js.map'].includes(p),
  });
}
