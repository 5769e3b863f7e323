import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { openTestDatabase } from './database.ts';

export interface TestApp {
  app: FastifyInstance;
  database: OpenedDatabase;
  config: Config;
  close(): Promise<void>;
}

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    APP_SECRET: TEST_SECRET,
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'parley-test-')),
    LOG_LEVEL: 'silent',
    ...env,
  });
}

/** The app as production builds it, on a fresh migrated database, driven with `inject`. */
export async function startTestApp(env: Record<string, string> = {}, database?: OpenedDatabase): Promise<TestApp> {
  const db = database ?? (await openTestDatabase());
  const config = testConfig(env);
  const app = await buildApp({ config, db: db.db });
  await app.ready();
  return {
    app,
    database: db,
    config,
    close: async () => {
      await app.close();
      if (!database) await db.close();
    },
  };
}
