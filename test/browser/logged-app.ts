import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import type { OpenedDatabase } from '../../src/db/database.ts';
import { testConfig } from '../app.ts';
import { openTestDatabase } from '../database.ts';
import { freePort } from '../server-process.ts';

export interface LoggedApp {
  baseUrl: string;
  app: FastifyInstance;
  database: OpenedDatabase;
  /** Everything the app logged so far (JSON lines at `info`). */
  log(): string;
  close(): Promise<void>;
}

/**
 * The app as harness.ts starts it, with its log captured (a journey checks that no credential reaches it), at
 * `hostname`: `localhost` puts the app on another site than a provider on 127.0.0.1, so a redirect from the
 * provider back to the app is cross-site for the browser, as Google's is.
 */
export async function startLoggedApp(env: Record<string, string> = {}, hostname: 'localhost' | '127.0.0.1' = '127.0.0.1'): Promise<LoggedApp> {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const database = await openTestDatabase();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const baseUrl = `http://${hostname}:${port}`;
    const app = await buildApp({ config: testConfig({ ...env, PUBLIC_URL: baseUrl }), db: database.db, logger: { level: 'info', stream } });
    try {
      await app.listen({ port, host: hostname });
      return {
        baseUrl,
        app,
        database,
        log: () => text,
        close: async () => {
          await app.close();
          await database.close();
        },
      };
    } catch (err) {
      await app.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) {
        await database.close();
        throw err;
      }
    }
  }
}
