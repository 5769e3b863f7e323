import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openTestDatabase } from '../../test/database.ts';
import { findResetTarget } from '../admin/user-detail-queries.ts';
import { hashPassword } from '../auth/passwords.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createUser } from '../users/user-queries.ts';
import { CliError } from './cli-runtime.ts';
import { parseResetPasswordArgs, resetPasswordCommand } from './user-reset-password.ts';

let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

const capture = () => {
  const lines: string[] = [];
  return { lines, info: (line: string) => void lines.push(line) };
};

test('user:reset-password takes --email (required) and --help', () => {
  assert.deepEqual(parseResetPasswordArgs(['--email', ' a@b.co ']), { email: 'a@b.co' });
  assert.equal(parseResetPasswordArgs(['--help']), null);
  for (const argv of [[], ['--email'], ['--email', ' '], ['a@b.co'], ['--email', 'a@b.co', '--admin']]) {
    assert.throws(
      () => parseResetPasswordArgs(argv),
      (err: Error) => err instanceof CliError && /Usage: npm run user:reset-password/.test(err.message),
      JSON.stringify(argv),
    );
  }
});

test('prints a one-time link on PUBLIC_URL that opens the account, replaces the earlier one, and is audited as the command line', async () => {
  const { id } = await createUser(database.db, { username: 'Forgetful Fay', email: 'fay@example.com', passwordHash: await hashPassword('old password words') });
  const out = capture();
  const first = await resetPasswordCommand(database.db, 'https://chat.example.com/', 'FAY@example.com', out);
  assert.match(first, /^https:\/\/chat\.example\.com\/reset-password\/[A-Za-z0-9_-]{43}$/);
  assert.equal(out.lines[1], first, 'the link alone on its line, to copy');
  assert.match(out.lines[0] ?? '', /fay@example\.com: it works once, within 60 minutes/);
  assert.equal(out.lines.length, 2, 'no loopback warning for a real address');
  const token = (link: string) => link.split('/').pop() ?? '';
  assert.deepEqual(await findResetTarget(database.db, token(first)), { userId: id, username: 'Forgetful Fay' });

  const second = await resetPasswordCommand(database.db, 'http://localhost:5000', 'fay@example.com', capture());
  assert.equal(await findResetTarget(database.db, token(first)), undefined, 'only the newest link works');
  assert.ok(await findResetTarget(database.db, token(second)));

  const audit = await database.db
    .selectFrom('chatbot_schema.admin_audit')
    .select(['idactor', 'txactor', 'txaction', 'idtarget', 'txtarget', 'txip'])
    .where('idtarget', '=', id)
    .execute();
  assert.equal(audit.length, 2);
  assert.deepEqual(audit[0], {
    idactor: null,
    txactor: 'command line (npm run user:reset-password)',
    txaction: 'create-reset-link',
    idtarget: id,
    txtarget: 'Forgetful Fay',
    txip: null,
  });
});

test('a loopback PUBLIC_URL is pointed out; an unknown or deactivated account is an error and creates no link', async () => {
  await createUser(database.db, { username: 'Local Lou', email: 'lou@example.com', passwordHash: null });
  const out = capture();
  await resetPasswordCommand(database.db, 'http://localhost:5000', 'lou@example.com', out);
  assert.match(out.lines[2] ?? '', /PUBLIC_URL is http:\/\/localhost:5000: this link opens only on this machine/);

  await assert.rejects(
    resetPasswordCommand(database.db, 'https://x.test', 'nobody@example.com', capture()),
    (err: Error) => err instanceof CliError && /No account/.test(err.message),
  );
  const { id } = await createUser(database.db, { username: 'Gone Gil', email: 'gil@example.com', passwordHash: null });
  await database.db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('idappuser', '=', id).execute();
  await assert.rejects(
    resetPasswordCommand(database.db, 'https://x.test', 'gil@example.com', capture()),
    (err: Error) => err instanceof CliError && /deactivated/.test(err.message),
  );
  const links = await database.db.selectFrom('chatbot_schema.password_reset').select('idappuser').where('idappuser', '=', id).execute();
  assert.deepEqual(links, []);
});
