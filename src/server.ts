import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DataDirInUseError, stopAtOnce } from './db/data-dir-lock.ts';
import { openDatabase } from './db/database.ts';
import { FOUNDATION_MIGRATION, migrateToLatest } from './db/migrate.ts';
import { serverLoggerOptions } from './http/log-output.ts';
import { bootstrapModels } from './llm/bootstrap-models.ts';

/** Reads config, opens the database, migrates, listens. Nothing else lives here. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  const database = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: config.DB_POOL_SIZE,
    // Someone deleted or replaced DATA_DIR's lock file: another process may open the database, so stop writing now.
    onLockLost: (err) => stopAtOnce(err, (line) => (app ? app.log.fatal({ lockFile: err.lockFile }, line) : console.error(line))),
  }).catch((err) => {
    if (!(err instanceof DataDirInUseError)) throw err;
    console.error(err.message);
    process.exit(1);
  });
  const applied = await migrateToLatest(database.db);
  await bootstrapModels(database.db, config);
  app = await buildApp({ config, db: database.db, logger: serverLoggerOptions(config), answersMayBeActive: !applied.includes(FOUNDATION_MIGRATION) });
  await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ database: database.kind, publicUrl: config.PUBLIC_URL }, `${config.APP_NAME} is ready`);

  // On a signal: no new connections; running answers get SHUTDOWN_GRACE_S to finish, the rest end `interrupted`
  // (chat-routes.ts); then the pool closes. A second Ctrl-C ends the process at once (the handlers are `once`).
  const shutdown = async (signal: string) => {
    app.log.info({ signal, graceS: config.SHUTDOWN_GRACE_S }, 'shutting down');
    // Storing the interrupted answers needs the database; one that stopped answering must not hold the process.
    setTimeout(
      () => {
        app.log.error('shutdown took longer than the grace period; exiting anyway');
        process.exit(1);
      },
      (config.SHUTDOWN_GRACE_S + 1.5) * 1000,
    ).unref();
    app.server.close(); // stop accepting now; app.close() below waits for the connections still open
    // Node closes the connections idle at close() only; an answer's stream that ends later leaves its connection
    // idle in keep-alive, and the close would wait keepAliveTimeout (72 s) for it.
    setInterval(() => app.server.closeIdleConnections(), 100).unref();
    await app.close();
    await database.close();
    app.log.info('stopped');
    process.exit(0);
  };
  const onSignal = (signal: string) => () =>
    shutdown(signal).catch((err) => {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));
}

await main();
