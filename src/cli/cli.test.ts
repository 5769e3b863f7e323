import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { runCliProcess } from '../../test/cli-process.ts';
import { openTestDatabase, testDbKind } from '../../test/database.ts';
import { createSession } from '../auth/sessions.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { openDatabase } from '../db/database.ts';
import { CliError, type CliOutput } from './cli-runtime.ts';
import { createUserCommand, parseCreateUserArgs } from './user-create.ts';
import { parseResetArgs, resetTwoFactorCommand } from './user-reset-2fa.ts';

const PASSWORD = 'a long enough passphrase';

function capture(): CliOutput & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (line) => void lines.push(line) };
}

async function rolesOf(db: OpenedDatabase['db'], email: string): Promise<string[]> {
  const rows = await sql<{ txname: string }>`
    SELECT r.txname FROM chatbot_schema.app_user u
    JOIN chatbot_schema.user_role ur USING (idappuser) JOIN chatbot_schema.role r USING (idrole)
    WHERE u.txemail = ${email} ORDER BY r.idrole`.execute(db);
  return rows.rows.map((r) => r.txname);
}

describe('argument parsing', () => {
  test('user:create takes --email, --username and --admin; the name defaults to the local part', () => {
    assert.deepEqual(parseCreateUserArgs(['--email', ' Ann@Example.com ']), { email: 'ann@example.com', username: 'ann', admin: false });
    assert.deepEqual(parseCreateUserArgs(['--email', 'a@b.co', '--username', 'Ann Lee', '--admin']), { email: 'a@b.co', username: 'Ann Lee', admin: true });
    assert.equal(parseCreateUserArgs(['--help']), null);
  });

  for (const [label, argv, message] of [
    ['no e-mail', [], /--email is required/],
    ['a bad e-mail', ['--email', 'not-an-address'], /not a valid e-mail/],
    ['an unknown flag', ['--email', 'a@b.co', '--root'], /Unknown option '--root'/],
    ['a positional argument', ['a@b.co'], /Unexpected argument/],
    ['a too long name', ['--email', 'a@b.co', '--username', 'x'.repeat(51)], /too long/],
  ] as const) {
    test(`user:create refuses ${label} with the usage line`, () => {
      assert.throws(
        () => parseCreateUserArgs([...argv]),
        (err: Error) => err instanceof CliError && message.test(err.message) && /Usage:/.test(err.message),
      );
    });
  }

  test('user:reset-2fa needs --email', () => {
    assert.deepEqual(parseResetArgs(['--email', 'a@b.co']), { email: 'a@b.co' });
    assert.throws(() => parseResetArgs([]), CliError);
    assert.throws(() => parseResetArgs(['--email']), CliError);
  });
});

describe('commands on the test database', () => {
  let database: OpenedDatabase;
  before(async () => {
    database = await openTestDatabase();
  });
  after(() => database.close());

  test('the first account is Admin, the next a User unless --admin is given', async () => {
    const out = capture();
    const first = await createUserCommand(database.db, { email: 'first@example.com', username: 'First', admin: false }, PASSWORD, out);
    assert.equal(first.isAdmin, true);
    assert.match(out.lines[0] ?? '', /Created administrator "First" <first@example.com>/);
    await createUserCommand(database.db, { email: 'plain@example.com', username: 'Plain', admin: false }, PASSWORD, out);
    await createUserCommand(database.db, { email: 'boss@example.com', username: 'Boss', admin: true }, PASSWORD, out);
    assert.deepEqual(await rolesOf(database.db, 'first@example.com'), ['Admin', 'User']);
    assert.deepEqual(await rolesOf(database.db, 'plain@example.com'), ['User']);
    assert.deepEqual(await rolesOf(database.db, 'boss@example.com'), ['Admin', 'User']);
    const row = await database.db.selectFrom('chatbot_schema.app_user').select('password').where('txemail', '=', 'plain@example.com').executeTakeFirstOrThrow();
    assert.match(row.password ?? '', /^\$argon2id\$/);
  });

  test('a taken e-mail (in any case) and a refused password are errors that store nothing', async () => {
    const count = async () => (await database.db.selectFrom('chatbot_schema.app_user').select('idappuser').execute()).length;
    const before = await count();
    await assert.rejects(
      createUserCommand(database.db, { email: 'PLAIN@example.com', username: 'Again', admin: false }, PASSWORD, capture()),
      (err: Error) => err instanceof CliError && /already exists/.test(err.message),
    );
    for (const weak of ['short', 'password1', 'x'.repeat(129)]) {
      await assert.rejects(
        createUserCommand(database.db, { email: 'weak@example.com', username: 'Weak', admin: false }, weak, capture()),
        (err: Error) => err instanceof CliError && /Password refused/.test(err.message),
      );
    }
    assert.equal(await count(), before);
  });

  test('reset-2fa turns 2FA off, drops the secret and ends only that user’s sessions', async () => {
    const ids = await database.db.selectFrom('chatbot_schema.app_user').select(['idappuser', 'txemail']).execute();
    const boss = ids.find((u) => u.txemail === 'boss@example.com')?.idappuser as number;
    const plain = ids.find((u) => u.txemail === 'plain@example.com')?.idappuser as number;
    await database.db
      .updateTable('chatbot_schema.app_user')
      .set({ is_2fa_enabled: true, totp_secret: 'v1.sealed.secret.x' })
      .where('idappuser', '=', boss)
      .execute();
    await createSession(database.db, boss, {});
    await createSession(database.db, boss, {});
    await createSession(database.db, plain, {});

    const out = capture();
    await resetTwoFactorCommand(database.db, 'Boss@Example.com', out);
    assert.match(out.lines.join('\n'), /now off for boss@example.com/);
    const user = await database.db
      .selectFrom('chatbot_schema.app_user')
      .select(['is_2fa_enabled', 'totp_secret'])
      .where('idappuser', '=', boss)
      .executeTakeFirstOrThrow();
    assert.deepEqual(user, { is_2fa_enabled: false, totp_secret: null });
    const sessions = await database.db.selectFrom('chatbot_schema.session').select('idappuser').execute();
    assert.deepEqual(
      sessions.map((s) => s.idappuser),
      [plain],
    );
    const audit = await database.db.selectFrom('chatbot_schema.admin_audit').select(['idactor', 'txactor', 'txaction']).where('idtarget', '=', boss).execute();
    assert.deepEqual(audit, [{ idactor: null, txactor: 'command line (npm run user:reset-2fa)', txaction: 'reset-2fa' }]);
  });

  test('reset-2fa for an unknown e-mail is an error', async () => {
    await assert.rejects(
      resetTwoFactorCommand(database.db, 'nobody@example.com', capture()),
      (err: Error) => err instanceof CliError && /No account/.test(err.message),
    );
  });
});

// The children open DATA_DIR's embedded database whichever run this is: on the PostgreSQL run they would repeat
// the PGlite run's test exactly (nine processes, ~50 CPU s).
const onlyOnce = testDbKind === 'postgres' && 'the same embedded DATA_DIR on both runs: it ran on the PGlite run';

describe('as child processes on an embedded database in DATA_DIR', { skip: onlyOnce }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-cli-'));
  const env = { DATA_DIR: dataDir, LOG_LEVEL: 'silent' };

  test('migrate reports what ran, then that nothing is left', async () => {
    const first = await runCliProcess('migrate.ts', [], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Applied migration 001-foundation/);
    const second = await runCliProcess('migrate.ts', [], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
  });

  test('user:create reads the password from stdin; errors exit 1 with one line', async () => {
    const ok = await runCliProcess('user-create.ts', ['--email', 'ops@example.com', '--username', 'Ops', '--admin'], env, `${PASSWORD}\n`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Created administrator "Ops" <ops@example.com>/);

    const weak = await runCliProcess('user-create.ts', ['--email', 'weak@example.com'], env, 'password1\n');
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /^Error: Password refused: .*common/);

    const unknown = await runCliProcess('user-reset-2fa.ts', ['--email', 'nobody@example.com'], env);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim(), 'Error: No account has the e-mail address nobody@example.com.');

    const reset = await runCliProcess('user-reset-2fa.ts', ['--email', 'ops@example.com'], env);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /sessions were ended/);

    const link = await runCliProcess('user-reset-password.ts', ['--email', 'ops@example.com'], { ...env, PUBLIC_URL: 'https://chat.example.com' });
    assert.equal(link.code, 0, link.stderr);
    assert.match(link.stdout, /^https:\/\/chat\.example\.com\/reset-password\/[A-Za-z0-9_-]{43}$/m);
    const noLink = await runCliProcess('user-reset-password.ts', ['--email', 'nobody@example.com'], env);
    assert.equal(noLink.code, 1);
    assert.equal(noLink.stderr.trim(), 'Error: No account has the e-mail address nobody@example.com.');

    const badConfig = await runCliProcess('migrate.ts', [], { ...env, REGISTRATION: 'maybe' });
    assert.equal(badConfig.code, 1);
    assert.equal(badConfig.stderr.trim(), 'Configuration error: REGISTRATION: must be open or closed');

    // The account is really there, with its password hash and both roles, once the CLI has closed the database.
    const opened = await openDatabase({ dataDir });
    try {
      assert.deepEqual(await rolesOf(opened.db, 'ops@example.com'), ['Admin', 'User']);
      assert.deepEqual(await rolesOf(opened.db, 'weak@example.com'), []);
    } finally {
      await opened.close();
    }
  });
});
