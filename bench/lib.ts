import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import pg from 'pg';
import { buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { embeddedOptions, type OpenedDatabase, openDatabase } from '../src/db/database.ts';
import { embeddedStartOptions } from '../src/db/embedded-start.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { openScratchPostgres } from '../test/database.ts';

/** Shared by every benchmark: which databases to run on, starting the app, signing in, and reporting. */

export type DbKind = 'pglite' | 'postgres';
export type Row = Record<string, string | number>;

export const root = path.resolve(import.meta.dirname, '..');

/** PGlite always; PostgreSQL too when TEST_DATABASE_URL points at a server (a database is created and dropped). */
export function databaseKinds(): DbKind[] {
  return process.env.TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

export function machine(): Row {
  const cores = cpus();
  return { cpu: cores[0]?.model.trim() ?? 'unknown', cores: cores.length, node: process.version, platform: `${process.platform}-${process.arch}` };
}

export interface BenchDatabase extends OpenedDatabase {
  /** A plain pg pool on the same database, for a floor to compare the app with (PGlite: always one connection). */
  newPool(max: number): pg.Pool;
}

/** A migrated database of its own: embedded in memory, or a fresh database on the TEST_DATABASE_URL server. */
export async function openBenchDatabase(kind: DbKind): Promise<BenchDatabase> {
  if (kind === 'pglite') {
    // Compiled as the app compiles it (the wasm compilation hints, docs/decisions/004), so its throughput is the app's.
    const lite = new PGlite('memory://', await embeddedStartOptions(embeddedOptions()));
    const opened = await openDatabase({ pglite: lite });
    await migrateToLatest(opened.db);
    return {
      ...opened,
      newPool: () => quiet(new pg.Pool({ ...(createPgConfig(lite) as unknown as pg.PoolConfig), max: 1 })),
      close: async () => {
        await opened.close();
        await lite.close();
      },
    };
  }
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('PostgreSQL benchmarks need TEST_DATABASE_URL');
  const scratch = await openScratchPostgres(url, 'parley_bench');
  return { ...scratch, newPool: (max) => quiet(new pg.Pool({ connectionString: scratch.url, max })) };
}

/** An idle connection the server closes (the scratch database dropped at the end) must not crash the benchmark. */
function quiet(pool: pg.Pool): pg.Pool {
  pool.on('error', () => {});
  return pool;
}

export interface BenchApp {
  app: FastifyInstance;
  database: BenchDatabase;
  config: Config;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * The app as server.ts builds it, listening on an ephemeral loopback port; logging nothing unless `logger` says
 * (the page benchmark logs as production does: a JSON line per request, here to /dev/null).
 */
export async function startBenchApp(kind: DbKind, env: Record<string, string> = {}, logger: FastifyServerOptions['logger'] = false): Promise<BenchApp> {
  const database = await openBenchDatabase(kind);
  const config = loadConfig({
    APP_SECRET: 'bench-secret-that-is-long-enough-0123456789',
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'parley-bench-')),
    LOG_LEVEL: 'silent',
    ...env,
  });
  const app = await buildApp({ config, db: database.db, logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address !== 'object') throw new Error('the app has no address');
  return {
    app,
    database,
    config,
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}

export interface SignedIn {
  /** The Cookie header to send. */
  cookie: string;
  csrf: string;
}

function cookiesOf(res: Response): string[] {
  return res.headers.getSetCookie().map((c) => c.split(';')[0] ?? '');
}

/** Registers through the real form (so argon2, CSRF and the session cookie are what a browser gets). */
export async function registerViaForm(baseUrl: string, user: { username: string; email: string; password: string }): Promise<SignedIn> {
  const form = await fetch(`${baseUrl}/register`);
  const anonymous = cookiesOf(form).join('; ');
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(await form.text())?.[1];
  if (!token) throw new Error('no CSRF token on /register');
  const res = await fetch(`${baseUrl}/register`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: anonymous },
    body: new URLSearchParams({ _csrf: token, ...user }).toString(),
  });
  if (res.status !== 303) throw new Error(`registration answered ${res.status}`);
  const session = cookiesOf(res).find((c) => c.startsWith('parley_session='));
  if (!session) throw new Error('no session cookie after registration');
  const page = await fetch(`${baseUrl}/chat`, { headers: { cookie: session } });
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1];
  if (page.status !== 200 || !csrf) throw new Error(`/chat answered ${page.status} after registration`);
  return { cookie: session, csrf };
}

/** A port nobody listens on right now (for a server started in another process): the tests' helper. */
export { freePort } from '../test/server-process.ts';

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

/** A GitHub-flavoured markdown table; columns are the union of the rows' keys, in first-seen order. */
export function markdownTable(rows: Row[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(columns), line(columns.map(() => '---')), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n');
}
