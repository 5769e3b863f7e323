import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyServerOptions, type RouteOptions } from 'fastify';
import { sql } from 'kysely';
import { writeAudit } from './admin/audit-queries.ts';
import { groupsAdminRoutes } from './admin/groups-routes.ts';
import { modelsAdminRoutes } from './admin/models-routes.ts';
import { usersAdminRoutes } from './admin/users-routes.ts';
import { apiRoutes } from './api/api-routes.ts';
import { googleRoutes } from './auth/google-routes.ts';
import { localAuthRoutes } from './auth/local-routes.ts';
import { passkeySignInRoutes } from './auth/passkey-sign-in-routes.ts';
import { secondFactorRoutes } from './auth/second-factor-routes.ts';
import { sessionPlugin } from './auth/session-plugin.ts';
import { stepUpRoutes } from './auth/step-up-routes.ts';
import { sealAdoptedTotpSecrets, totpSecretBox } from './auth/totp-queries.ts';
import { catchUpJobs } from './catch-up-jobs.ts';
import { chatRoutes } from './chat/chat-routes.ts';
import { chatTransferRoutes } from './chat/transfer-routes.ts';
import { chatTransferSection } from './chat/transfer-views.ts';
import type { Config } from './config.ts';
import { deriveKey } from './crypto/secret-box.ts';
import { type CatchUpRun, startCatchUp } from './db/catch-up.ts';
import type { Db } from './db/database.ts';
import { OutageLog } from './db/outage.ts';
import { csrfPlugin } from './http/csrf.ts';
import { installErrorHandlers } from './http/error-handler.ts';
import { flashPlugin } from './http/flash.ts';
import { parseFormStrict } from './http/form-parser.ts';
import { installInputGuards } from './http/input-guards.ts';
import { withRedaction } from './http/log-redaction.ts';
import { pagesPlugin } from './http/pages.ts';
import { OneLinePerRequest } from './http/request-log.ts';
import { registerSecurityHeaders } from './http/security-headers.ts';
import { registerStaticFiles } from './http/static-files.ts';
import { sendLargeStringsAsUtf8 } from './http/utf8-body.ts';
import { registerMetrics } from './metrics/metrics-routes.ts';
import { passkeySettingsRoutes } from './settings/passkey-routes.ts';
import { settingsRoutes } from './settings/settings-routes.ts';
import { twoFactorSettingsRoutes } from './settings/two-factor-routes.ts';
import { statsRoutes } from './stats/stats-routes.ts';
import { assetUrl } from './views/assets.ts';

const root = path.resolve(import.meta.dirname, '..');

declare module 'fastify' {
  interface FastifyInstance {
    /** The process's one log of database outages, for every task that ticks (src/db/outage.ts). */
    databaseOutage: OutageLog;
  }
}
/**
 * Forms are small; a prompt is at most MAX_PROMPT_CHARS characters (code points), each up to 6 bytes as the browser's
 * JSON.stringify writes it (a control character is `\u0001`; an emoji is 4 raw bytes), plus JSON overhead.
 */
const bodyLimitBytes = (config: Config) => Math.max(64 * 1024, config.MAX_PROMPT_CHARS * 6 + 4096);

export interface BuildOptions {
  config: Config;
  db: Db;
  logger?: FastifyServerOptions['logger'];
  /** Sees every route as it is added; the authorization matrix test uses it to find routes missing from its table. */
  onRoute?: (route: RouteOptions) => void;
  /**
   * False when this start's migrations created Parley's schema (a new or just adopted database): no answer can be
   * active, so the start's sweep for answers of dead processes — a scan of `response` before its index exists on a
   * big adopted database — is skipped. Default true.
   */
  answersMayBeActive?: boolean;
}

/** How long /readyz waits for the database's answer before it says 503. */
const READY_TIMEOUT_MS = 2_000;

/** The app without a listening socket: server.ts listens, tests `inject`. */
export async function buildApp({ config, db, logger = false, onRoute, answersMayBeActive = true }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: withRedaction(logger),
    logController: new OneLinePerRequest(),
    trustProxy: config.TRUST_PROXY,
    bodyLimit: bodyLimitBytes(config),
    // Deep links like /chat/12/ and /chat/12 are the same page.
    routerOptions: { ignoreTrailingSlash: true },
  });
  if (onRoute) app.addHook('onRoute', onRoute);
  sendLargeStringsAsUtf8(app);
  app.decorate('databaseOutage', new OutageLog(app.log));
  // First: its request counter hooks every route after it, and the slices record into app.metrics.
  registerMetrics(app, { db, token: config.METRICS_TOKEN });

  installErrorHandlers(app);
  await registerSecurityHeaders(app, { secure: config.secureCookies });
  await app.register(cookie, { secret: deriveKey(config.APP_SECRET, 'cookie-signing').toString('base64url') });
  await app.register(formbody, { bodyLimit: 64 * 1024, parser: parseFormStrict });
  installInputGuards(app);
  // No route takes text/plain; without this, Fastify's default parser let it through to a confusing CSRF 403 instead of 415.
  app.removeContentTypeParser('text/plain');
  await registerStaticFiles(app, root);

  // Order matters: the CSRF cookie first, then the session (which rebinds the token), then pages and flashes.
  await app.register(csrfPlugin, { appSecret: config.APP_SECRET, publicUrl: config.PUBLIC_URL, secure: config.secureCookies });
  await app.register(flashPlugin, { secure: config.secureCookies });
  await app.register(pagesPlugin, { appName: config.APP_NAME });
  await app.register(sessionPlugin, { db, secure: config.secureCookies, totpForOauth: config.TOTP_FOR_OAUTH });

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready: the database answers, within READY_TIMEOUT_MS. A probe gets its 503 in time even from a database that
  // hangs rather than refuses (the pool may wait up to CONNECT_TIMEOUT_MS for a connection); README "Failure behaviour".
  app.get('/readyz', async (_req, reply) => {
    const answered = sql`SELECT 1`.execute(db).then(
      () => true,
      () => false,
    );
    if (await Promise.race([answered, sleep(READY_TIMEOUT_MS, false, { ref: false })])) return { status: 'ready' };
    return reply.code(503).send({ status: 'database unreachable' });
  });

  // Secrets the Flask prototype stored in plaintext are sealed before the first sign-in can read them (migration
  // 009 cannot: it has no APP_SECRET). One small query once none is left.
  await sealAdoptedTotpSecrets(db, totpSecretBox(config.APP_SECRET));
  app.decorate('require2faForAdmins', config.REQUIRE_2FA_FOR_ADMINS);
  app.decorate('apiKeysEnabled', config.API_KEYS);

  await app.register(localAuthRoutes, { db, config });
  await app.register(googleRoutes, { db, config });
  await app.register(secondFactorRoutes, { db, config });
  await app.register(stepUpRoutes, { db, config });
  await app.register(passkeySignInRoutes, {
    db,
    config,
    // The audit log is the admin slice's: the sign-in reports, this writes (the account is both actor and target).
    reportClonedPasskey: async (req, passkey, counter) => {
      const owner = await db.selectFrom('chatbot_schema.app_user').select('txusername as username').where('idappuser', '=', passkey.userId).executeTakeFirst();
      const account = { id: passkey.userId, username: owner?.username ?? '' };
      await writeAudit(db, { ...account, ip: req.ip }, 'passkey-counter-regressed', [account], { name: passkey.name, counter, stored: passkey.counter });
    },
  });
  await app.register(settingsRoutes, {
    db,
    localLogin: config.LOCAL_LOGIN,
    transferSection: { render: chatTransferSection, script: () => assetUrl('transfer') },
  });
  await app.register(twoFactorSettingsRoutes, { db, config });
  await app.register(passkeySettingsRoutes, { db, config });
  await app.register(chatRoutes, { db, config, answersMayBeActive });
  await app.register(chatTransferRoutes, { db });
  await app.register(modelsAdminRoutes, { db, config });
  await app.register(usersAdminRoutes, { db, config });
  await app.register(groupsAdminRoutes, { db, config });
  await app.register(statsRoutes, { db, config });
  if (config.API_KEYS) await app.register(apiRoutes, { db, config });

  // Rows from before a migration (an adopted database's answers, the usage rollups) are caught up once the server
  // listens, never before (a million adopted answers take minutes), and never in a test that only injects. On close
  // the jobs stop after the batch in progress, which commits; the next start resumes (decision record 013).
  let catchUp: CatchUpRun | undefined;
  let catchUpStopped: Promise<void> | undefined;
  app.addHook('onListen', async () => {
    catchUp = startCatchUp(db, catchUpJobs(), app.log);
  });
  app.addHook('preClose', async () => {
    catchUpStopped = catchUp?.stop();
  });
  app.addHook('onClose', async () => {
    await catchUpStopped;
  });
  return app;
}
