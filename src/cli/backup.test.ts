import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, TEST_SECRET } from '../../test/app.ts';
import { newChat, parseSse } from '../../test/chat-fixtures.ts';
import { type CliRun, runCliProcess } from '../../test/cli-process.ts';
import { TestClient } from '../../test/client.ts';
import { migratedDataDir, openScratchPostgres, testDbKind } from '../../test/database.ts';
import { spawnServer } from '../../test/server-process.ts';
import { enrolThroughSettings, nextCode } from '../../test/totp-helpers.ts';
import { type Db, type OpenedDatabase, openDatabase } from '../db/database.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';
import { createApiKeyBox, createModel, getModelConnection } from '../llm/llm-queries.ts';
import { countRowsPerTable, parseCopyArgs } from './backup.ts';
import { CliError } from './cli-runtime.ts';

const API_KEY = 'sk-backup-round-trip-key';
const OTHER_SECRET = 'another-secret-that-is-long-enough-9876543210';
const scratch = (prefix: string) => mkdtempSync(path.join(tmpdir(), `parley-${prefix}-`));

/** Rows a restore must bring back exactly, beyond the counts: accounts with their secrets, answers, rollups. */
async function spotRows(db: Db) {
  return {
    users: await db
      .selectFrom('chatbot_schema.app_user')
      .select(['idappuser', 'txemail', 'password', 'is_2fa_enabled', 'totp_secret'])
      .orderBy('idappuser')
      .execute(),
    responses: await db.selectFrom('chatbot_schema.response').select(['idresponse', 'txstatus', 'txmarkdown']).orderBy('idresponse').execute(),
    rollups: (await sql`SELECT * FROM chatbot_schema.usage_day_model ORDER BY dday, idllm`.execute(db)).rows,
    recoveryCodes: await db.selectFrom('chatbot_schema.recovery_code').select(['idappuser', 'txhash']).orderBy('idrecovery_code').execute(),
  };
}

async function withEmbedded<T>(dataDir: string, work: (opened: OpenedDatabase) => Promise<T>): Promise<T> {
  const opened = await openDatabase({ dataDir });
  try {
    return await work(opened);
  } finally {
    await opened.close();
  }
}

describe('arguments', () => {
  test('<file> [--force]; the file is required, one only, unknown flags refused', () => {
    assert.deepEqual(parseCopyArgs(['b.tar.gz'], undefined, '/srv/x'), { file: '/srv/x/b.tar.gz', force: false });
    assert.deepEqual(parseCopyArgs(['--force', '/b/c.tar.gz']), { file: '/b/c.tar.gz', force: true });
    assert.equal(parseCopyArgs(['--help']), null);
    for (const argv of [[], ['a', 'b'], ['a', '--overwrite']]) assert.throws(() => parseCopyArgs(argv), CliError);
  });
});

test('with DATABASE_URL both commands refuse and point to pg_dump / pg_restore and the README', async () => {
  const env = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/not_used', APP_SECRET: TEST_SECRET };
  const file = path.join(scratch('backup-pg'), 'x.tar.gz');
  const backup = await runCliProcess('backup.ts', [file], env);
  assert.equal(backup.code, 1);
  assert.match(backup.stderr, /^Error: DATABASE_URL is set.*Use pg_dump -Fc -f <file> "\$DATABASE_URL" \(see "Backups" in the README\)/);
  writeFileSync(file, 'x');
  const restore = await runCliProcess('restore.ts', [file], env);
  assert.equal(restore.code, 1);
  assert.match(restore.stderr, /^Error: DATABASE_URL is set.*Use pg_restore into a new database \(see "Backups" in the README\)/);
});

interface World {
  modelId: number;
  totp: { secret: string; codes: string[] };
  counts: Map<string, number>;
  spots: Awaited<ReturnType<typeof spotRows>>;
}

/**
 * The data is made through the app, as users would: two accounts (one with 2FA and recovery codes), chats with
 * answers, the rollups the answers feed, and a model connection whose API key the fake model server insists on.
 */
async function seedWorld(database: OpenedDatabase, llm: FakeLlm): Promise<World> {
  const t = await startTestApp({}, database);
  try {
    const modelId = await createModel(database.db, createApiKeyBox(TEST_SECRET), {
      name: 'Fake echo',
      baseUrl: llm.baseUrl,
      model: 'fake-echo',
      enabled: true,
      apiKey: API_KEY,
    });
    const ada = new TestClient(t.app);
    await ada.register({ username: 'Ada', email: 'ada@example.com' });
    const bob = new TestClient(t.app);
    await bob.register({ username: 'Bob', email: 'bob@example.com' });
    const totp = await enrolThroughSettings(bob);
    for (const c of [ada, bob]) {
      await c.get('/chat');
      const chatId = await newChat(c, modelId);
      for (const content of ['first question', 'second question']) {
        const res = await c.postJson(`/api/chats/${chatId}/messages`, { content });
        assert.equal(parseSse(res.body).at(-1)?.event, 'done', res.body);
      }
    }
    const world = { modelId, totp, counts: await countRowsPerTable(database.db), spots: await spotRows(database.db) };
    assert.equal(world.spots.responses.length, 4);
    assert.ok(world.spots.rollups.length > 0 && (world.counts.get('recovery_code') ?? 0) > 0 && (world.counts.get('session') ?? 0) > 0);
    return world;
  } finally {
    await t.app.close();
  }
}

/** The restored database has every row, and the app on it signs Bob in with password + TOTP and uses the API key. */
async function assertRestored(restored: OpenedDatabase, world: World): Promise<void> {
  assert.deepEqual(await countRowsPerTable(restored.db), world.counts);
  assert.deepEqual(await spotRows(restored.db), world.spots);
  const connection = await getModelConnection(restored.db, createApiKeyBox(TEST_SECRET), world.modelId);
  assert.equal(connection?.apiKey, API_KEY);

  const t = await startTestApp({}, restored);
  try {
    const bob = new TestClient(t.app);
    const first = await bob.login('bob@example.com');
    assert.equal(first.headers.location, '/login/2fa');
    await bob.get('/login/2fa');
    const second = await bob.post('/login/2fa', { otp_code: nextCode(world.totp.secret) });
    assert.equal(second.headers.location, '/chat', second.body);
    await bob.get('/chat');
    // The model server answers only with the right key: a done answer proves the restored key is the real one.
    const chatId = await newChat(bob, world.modelId);
    const res = await bob.postJson(`/api/chats/${chatId}/messages`, { content: 'after the restore' });
    assert.equal(parseSse(res.body).at(-1)?.event, 'done', res.body);
  } finally {
    await t.app.close();
  }
}

// The commands copy the embedded database whatever TEST_DB says; running the same round trip again adds nothing.
const onlyOnce = testDbKind === 'postgres' && 'embedded-only commands: this round trip ran on the PGlite run (PostgreSQL uses pg_dump, README "Backups")';

describe('backup and restore of an embedded database in DATA_DIR', { skip: onlyOnce }, () => {
  let source: string;
  let env: Record<string, string>;
  const file = path.join(scratch('backup-out'), 'parley.tar.gz');
  let llm: FakeLlm;
  let world: World;

  before(async () => {
    llm = await startFakeLlm({ apiKey: API_KEY });
    source = await migratedDataDir('backup-src');
    env = { DATA_DIR: source, APP_SECRET: TEST_SECRET };
    world = await withEmbedded(source, (database) => seedWorld(database, llm));
  });
  after(() => llm.close());

  test('backup → restore into a fresh DATA_DIR: every row back, password + TOTP sign-in, the API key decrypts', async () => {
    const backup = await runCliProcess('backup.ts', [file], env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /Backed up the embedded database .* It opened again with the same number of rows in every table\./);
    assert.match(backup.stdout, /APP_SECRET is NOT in the backup\. This process used the APP_SECRET environment variable/);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the backup holds password hashes: readable by its owner only');
    assert.deepEqual(readdirSync(path.dirname(file)), ['parley.tar.gz'], 'no temporary file left beside it');

    const target = scratch('backup-dst');
    const restore = await runCliProcess('restore.ts', [file], { DATA_DIR: target, APP_SECRET: TEST_SECRET });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /The 2 model API keys and 2FA secrets in it open with this APP_SECRET\./);
    await withEmbedded(target, (restored) => assertRestored(restored, world));
  });

  test('backup does not replace an existing file without --force', async () => {
    const before = readFileSync(file);
    const again = await runCliProcess('backup.ts', [file], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^Error: .*parley\.tar\.gz already exists; pass --force to replace it\./);
    assert.ok(readFileSync(file).equals(before));
    const forced = await runCliProcess('backup.ts', ['--force', file], env);
    assert.equal(forced.code, 0, forced.stderr);
  });

  test('restore over a database needs --force and keeps the old one aside; another APP_SECRET is named: TOTP fails, a recovery code works', async () => {
    const target = await migratedDataDir('backup-over');
    const otherEnv = { DATA_DIR: target, APP_SECRET: OTHER_SECRET };
    const refused = await runCliProcess('restore.ts', [file], otherEnv);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /pglite already holds a database\. Pass --force to restore over it/);

    const forced = await runCliProcess('restore.ts', [file, '--force'], otherEnv);
    assert.equal(forced.code, 0, forced.stderr);
    const aside = readdirSync(target).find((n) => n.startsWith('pglite.before-restore-'));
    assert.ok(aside && existsSync(path.join(target, aside, 'PG_VERSION')), 'the replaced database is kept');
    assert.match(forced.stdout, new RegExp(`kept in .*${aside}`));
    assert.match(forced.stdout, /Warning: 2 of the 2 model API keys and 2FA secrets in the backup do not open with the APP_SECRET/);

    await withEmbedded(target, async (restored) => {
      assert.deepEqual(await countRowsPerTable(restored.db), world.counts);
      const t = await startTestApp({ APP_SECRET: OTHER_SECRET }, restored);
      try {
        const bob = new TestClient(t.app);
        await bob.login('bob@example.com');
        await bob.get('/login/2fa');
        const code = await bob.post('/login/2fa', { otp_code: nextCode(world.totp.secret) });
        assert.notEqual(code.headers.location, '/chat', 'a TOTP code cannot be checked without the APP_SECRET that sealed the secret');
        await bob.get('/login/2fa?recovery=1');
        const recovery = await bob.post('/login/2fa', { otp_code: world.totp.codes[0] });
        assert.equal(recovery.headers.location, '/chat', 'recovery codes are hashes: no key needed');
      } finally {
        await t.app.close();
      }
    });
  });

  test('a file that is not a backup, or a cut one, changes nothing', async () => {
    const target = scratch('backup-bad');
    const notBackup = path.join(target, 'notes.txt');
    writeFileSync(notBackup, 'hello');
    const plain = await runCliProcess('restore.ts', [notBackup], { DATA_DIR: target, APP_SECRET: TEST_SECRET });
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /is not a backup made by npm run backup/);
    const cut = path.join(target, 'cut.tar.gz');
    writeFileSync(cut, readFileSync(file).subarray(0, 100_000));
    const broken = await runCliProcess('restore.ts', [cut], { DATA_DIR: target, APP_SECRET: TEST_SECRET });
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /is damaged \(unexpected end of file\); nothing was changed/);
    assert.deepEqual(
      readdirSync(target).filter((n) => n.startsWith('pglite')),
      [],
      'no database, no staging folder, no lock left',
    );
  });

  test('while Parley runs on DATA_DIR, backup and restore refuse and say to stop it first', async () => {
    const server = await spawnServer({ DATA_DIR: source, APP_SECRET: TEST_SECRET });
    try {
      const pid = String(server.child.pid);
      const copy = path.join(scratch('backup-live'), 'live.tar.gz');
      const backup = await runCliProcess('backup.ts', [copy], env);
      assert.equal(backup.code, 1);
      assert.match(backup.stderr, new RegExp(`^Error: Parley is running on this DATA_DIR: process ${pid} holds .*pglite\\.lock\\. Stop Parley first`));
      assert.equal(existsSync(copy), false);
      assert.deepEqual(readdirSync(path.dirname(copy)), [], 'no temporary file either');
      const restore = await runCliProcess('restore.ts', ['--force', file], env);
      assert.equal(restore.code, 1);
      assert.match(restore.stderr, new RegExp(`^Error: Parley is running on this DATA_DIR: process ${pid} holds .*Stop Parley first`));
      assert.equal((await fetch(`${server.baseUrl}/readyz`)).status, 200, 'the server was not disturbed');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    const leftOver = readdirSync(source).filter((n) => n.startsWith('pglite.') && n !== 'pglite.lock'); // the lock file stays: it is never deleted
    assert.deepEqual(leftOver, [], 'nothing was moved aside or left half-way');
  });
});

/** A PostgreSQL client tool, as the README's commands run it. */
function tool(name: 'pg_dump' | 'pg_restore', args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(name, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const hasPgTools = ['pg_dump', 'pg_restore'].every((name) => spawnSync(name, ['--version']).status === 0);
const postgresOnly =
  testDbKind !== 'postgres'
    ? 'PostgreSQL backups: this runs on the PostgreSQL run'
    : !hasPgTools && 'pg_dump and pg_restore are not installed (apt-get install postgresql-client)';

describe('pg_dump / pg_restore as the README says', { skip: postgresOnly }, () => {
  test('a custom-format dump restored into a new database owned by a plain role: every row back, TOTP sign-in, the API key decrypts', async () => {
    const serverUrl = process.env.TEST_DATABASE_URL ?? '';
    const llm = await startFakeLlm({ apiKey: API_KEY });
    const source = await openScratchPostgres(serverUrl, 'parley_backup_src');
    const target = await openScratchPostgres(serverUrl, 'parley_backup_dst', false);
    // As on a managed server: the restore runs as the database's owner, not a superuser, and pg_trgm was enabled by an
    // administrator (so its COMMENT, which only the extension's owner may set, must be skipped: --no-comments).
    const owner = `parley_backup_owner_${randomBytes(4).toString('hex')}`;
    const targetUrl = new URL(target.url);
    await sql`CREATE ROLE ${sql.id(owner)} LOGIN`.execute(source.db);
    try {
      await sql`ALTER DATABASE ${sql.id(targetUrl.pathname.slice(1))} OWNER TO ${sql.id(owner)}`.execute(target.db);
      const trgm = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') AS ok`.execute(target.db);
      if (trgm.rows[0]?.ok) await sql`CREATE EXTENSION pg_trgm`.execute(target.db);
      const world = await seedWorld(source, llm);
      const file = path.join(scratch('pg-dump'), 'parley.dump');
      // Taken with the app's pool connected: pg_dump reads one snapshot, so it needs no pause.
      const dump = await tool('pg_dump', ['-Fc', '-f', file, source.url]);
      assert.equal(dump.code, 0, dump.stderr);
      targetUrl.username = owner;
      const restore = await tool('pg_restore', ['--no-owner', '--no-comments', '--single-transaction', '--exit-on-error', '-d', targetUrl.toString(), file]);
      assert.equal(restore.code, 0, restore.stderr);
      await assertRestored(target, world);
    } finally {
      await target.close();
      await sql`DROP ROLE IF EXISTS ${sql.id(owner)}`.execute(source.db);
      await source.close();
      await llm.close();
    }
  });
});
