import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, globSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import pg from 'pg';
import { embeddedOptions, type OpenedDatabase, openDatabase } from '../src/db/database.ts';
import { buildDeferredIndexes } from '../src/db/deferred-indexes.ts';
import { prebuiltClusterPath, readPrebuiltCluster } from '../src/db/embedded-start.ts';
import { migrateToLatest } from '../src/db/migrate.ts';

const root = path.resolve(import.meta.dirname, '..');
/**
 * The migrated embedded database every PGlite test file starts from: a cluster directory, copied per file and opened
 * in place. Copying 40 MB of files costs the kernel a few hundredths of a CPU second; loading the same cluster as a
 * gzipped tarball into PGlite's in-memory file system cost ~1.2 CPU s more per file (gunzip, then untar in JS),
 * measured for docs/decisions/018-suite-time.md.
 */
export const templateDir = path.join(root, '.cache', 'pglite-template');
const templateKeyPath = `${templateDir}.key`;

/** Which database this run uses: `TEST_DB=postgres` (with TEST_DATABASE_URL) or the embedded one. */
export const testDbKind: 'postgres' | 'pglite' = process.env.TEST_DB === 'postgres' ? 'postgres' : 'pglite';

/**
 * Migrates the cluster a first start gets (src/db/prebuilt, else a fresh `initdb`) once, on disk, and keeps its
 * directory as the template, cleanly shut down.
 */
export async function buildPgliteTemplate(): Promise<void> {
  const building = `${templateDir}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  const prebuilt = existsSync(prebuiltClusterPath()) ? { loadDataDir: readPrebuiltCluster() } : {};
  const lite = new PGlite(building, { ...embeddedOptions(), ...prebuilt });
  const opened = await openDatabase({ pglite: lite });
  await migrateToLatest(opened.db);
  // What a server builds after it listens (src/db/deferred-indexes.ts): test databases get it from the start.
  await buildDeferredIndexes(opened.db);
  await opened.close();
  await lite.close();
  // Replaced whole: a test file copying the old one meanwhile still reads a complete cluster (its files are
  // unlinked, not rewritten).
  const old = `${templateDir}.${process.pid}.old`;
  if (existsSync(templateDir)) renameSync(templateDir, old);
  renameSync(building, templateDir);
  rmSync(old, { recursive: true, force: true });
}

/**
 * What the template is made from: the database code, its migrations, the prebuilt cluster and PGlite's version. `npm test` builds the
 * template only when this changed since the last build (a build takes 5–30 s on a loaded machine).
 */
function templateSourceKey(): string {
  const hash = createHash('sha256');
  const sources = globSync(['src/db/*.ts', 'src/db/migrations/**/*.ts', 'src/db/prebuilt/*'], { cwd: root, exclude: ['**/*.test.ts'] }).sort();
  for (const file of sources) hash.update(file).update(readFileSync(path.join(root, file)));
  const pglite = path.join(root, 'node_modules/@electric-sql/pglite/package.json');
  hash.update(existsSync(pglite) ? readFileSync(pglite) : 'no pglite');
  return hash.digest('hex');
}

export async function ensurePgliteTemplate(): Promise<void> {
  const key = templateSourceKey();
  if (existsSync(path.join(templateDir, 'PG_VERSION')) && existsSync(templateKeyPath) && readFileSync(templateKeyPath, 'utf8') === key) return;
  await buildPgliteTemplate();
  writeFileSync(templateKeyPath, key);
}

/**
 * Copies the migrated template cluster to `dir` (made if missing), ready for `new PGlite(dir)` or as
 * DATA_DIR/pglite for a server or CLI process: no initdb, no migrations.
 */
export async function copyPgliteTemplate(dir: string): Promise<void> {
  if (!existsSync(path.join(templateDir, 'PG_VERSION'))) await buildPgliteTemplate();
  cpSync(templateDir, dir, { recursive: true });
}

/** A new DATA_DIR with a migrated embedded database, as the server leaves it, from the template (no initdb: ~3 s less). */
export async function migratedDataDir(prefix: string): Promise<string> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `parley-${prefix}-`));
  await copyPgliteTemplate(path.join(dataDir, 'pglite'));
  const opened = await openDatabase({ dataDir }); // a template built before a new migration is brought up to date
  try {
    await migrateToLatest(opened.db);
  } finally {
    await opened.close();
  }
  return dataDir;
}

export async function emptyPglite(): Promise<PGlite> {
  return new PGlite('memory://', embeddedOptions());
}

/** Runs `fn` with a client connected to the database that `serverUrl` names (not the test's own). */
async function withServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The migrated template on a PostgreSQL server: migrations run once per server and database code (not ~3 s for
 * each test database), the first test file to need it builds it under an advisory lock while the others wait, and
 * each test database is a copy (`CREATE DATABASE … TEMPLATE`). Named by the code's key, so branches sharing a
 * server never use each other's; an old one is never dropped (a run on another branch may be copying it).
 */
async function postgresTemplate(serverUrl: string): Promise<string> {
  const template = `parley_template_${templateSourceKey().slice(0, 16)}`;
  return withServer(serverUrl, async (client) => {
    await client.query(`SELECT pg_advisory_lock(hashtext('parley test template'))`);
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (found.rowCount === 0) {
        const building = `${template}_${randomBytes(4).toString('hex')}`;
        await client.query(`CREATE DATABASE ${building}`);
        const url = new URL(serverUrl);
        url.pathname = `/${building}`;
        const opened = await openDatabase({ databaseUrl: url.toString() });
        await migrateToLatest(opened.db);
        await buildDeferredIndexes(opened.db);
        await opened.close();
        // Renamed only when complete and nobody is connected: a copy is never taken of a half-migrated database.
        await client.query(`ALTER DATABASE ${building} RENAME TO ${template}`);
      }
      return template;
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('parley test template'))`);
    }
  });
}

/** A database of its own on the server at `serverUrl` (tests, benchmarks), dropped again at close. */
export async function openScratchPostgres(serverUrl: string, prefix: string, migrate = true): Promise<OpenedDatabase & { url: string }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const template = migrate ? await postgresTemplate(serverUrl) : undefined;
  await withServer(serverUrl, (client) => client.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`));
  const dbUrl = new URL(serverUrl);
  dbUrl.pathname = `/${name}`;
  const opened = await openDatabase({ databaseUrl: dbUrl.toString() });
  // Nothing to do when the template is current; the test of the migrations themselves starts empty (migrate: false).
  if (migrate) await migrateToLatest(opened.db);
  return {
    ...opened,
    url: dbUrl.toString(),
    close: async () => {
      await opened.close();
      await withServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** A fresh, migrated database for one test file. On PostgreSQL: a database of its own, dropped at close. */
export async function openTestDatabase(opts: { migrate?: boolean } = {}): Promise<OpenedDatabase> {
  const migrate = opts.migrate ?? true;
  if (testDbKind === 'postgres') {
    const url = process.env.TEST_DATABASE_URL;
    if (!url) throw new Error('TEST_DB=postgres needs TEST_DATABASE_URL');
    return openScratchPostgres(url, 'parley_test', migrate);
  }
  if (!migrate) {
    const lite = await emptyPglite();
    const opened = await openDatabase({ pglite: lite });
    return { ...opened, close: () => closeBoth(opened, lite) };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-pglite-'));
  await copyPgliteTemplate(dir);
  const lite = new PGlite(dir, embeddedOptions());
  const opened = await openDatabase({ pglite: lite });
  // A template built before a new migration was added is brought up to date here.
  await migrateToLatest(opened.db);
  return { ...opened, close: () => closeBoth(opened, lite, dir) };
}

async function closeBoth(opened: OpenedDatabase, lite: PGlite, dir?: string): Promise<void> {
  await opened.close();
  await lite.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export async function countRows(opened: OpenedDatabase, table: string): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(opened.db);
  return r.rows[0]?.n ?? 0;
}
