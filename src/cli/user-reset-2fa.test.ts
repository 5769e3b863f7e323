import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openTestDatabase } from '../../test/database.ts';
import { addPasskey, countPasskeys } from '../auth/passkey-queries.ts';
import { generateTotpSecret, totpCodeAt } from '../auth/totp.ts';
import { confirmEnrolment, readTotpState, startEnrolment, totpSecretBox } from '../auth/totp-queries.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createUser } from '../users/user-queries.ts';
import { resetTwoFactorCommand } from './user-reset-2fa.ts';

let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

test('npm run user:reset-2fa clears everything TOTP stored (the admin page’s resetTwoFactor): secret, recovery codes, pending setup', async () => {
  const box = totpSecretBox('test-secret-that-is-long-enough-0123456789');
  const { id } = await createUser(database.db, { username: 'Locked Out', email: 'locked@example.com', passwordHash: null });
  const secret = generateTotpSecret();
  await startEnrolment(database.db, box, id, secret);
  assert.ok(await confirmEnrolment(database.db, box, id, totpCodeAt(secret, Date.now()), Date.now()));
  await startEnrolment(database.db, box, id, generateTotpSecret()); // a re-enrolment left half-way
  const lines: string[] = [];
  await resetTwoFactorCommand(database.db, 'LOCKED@example.com', { info: (l) => lines.push(l) });
  assert.match(lines.join('\n'), /now off for locked@example.com/);
  assert.deepEqual(await readTotpState(database.db, id), { enabled: false, email: 'locked@example.com', unusedRecoveryCodes: 0, hasPendingSecret: false });
  const row = await database.db
    .selectFrom('chatbot_schema.app_user')
    .select(['totp_secret', 'totp_last_step'])
    .where('idappuser', '=', id)
    .executeTakeFirstOrThrow();
  assert.deepEqual(row, { totp_secret: null, totp_last_step: null });
});

test('npm run user:reset-2fa removes the passkeys too (an account whose only factor was a lost passkey)', async () => {
  const { id } = await createUser(database.db, { username: 'Lost Key', email: 'lost-key@example.com', passwordHash: null });
  const passkey = { publicKey: 'pk', counter: 0, transports: [], backupEligible: false, backedUp: false };
  assert.equal(await addPasskey(database.db, id, { ...passkey, credentialId: 'lost-1', name: 'Phone' }), 'added');
  assert.equal(await addPasskey(database.db, id, { ...passkey, credentialId: 'lost-2', name: 'Key' }), 'added');
  const lines: string[] = [];
  await resetTwoFactorCommand(database.db, 'lost-key@example.com', { info: (l) => lines.push(l) });
  assert.match(lines.join('\n'), /now off for lost-key@example.com \(their passkeys removed\)/);
  assert.equal(await countPasskeys(database.db, id), 0);
});
