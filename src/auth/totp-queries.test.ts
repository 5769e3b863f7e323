import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase, testDbKind } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createUser } from '../users/user-queries.ts';
import { generateTotpSecret, TOTP_STEP_S, totpCodeAt } from './totp.ts';
import {
  confirmEnrolment,
  consumeTotpStep,
  readPendingSecret,
  readTotpState,
  resetTwoFactor,
  sealAdoptedTotpSecrets,
  startEnrolment,
  totpSecretBox,
  useRecoveryCode,
  verifyAndConsumeProof,
} from './totp-queries.ts';

const box = totpSecretBox('test-secret-that-is-long-enough-0123456789');
const STEP_MS = TOTP_STEP_S * 1000;
// A pinned clock in the middle of a step.
const T0 = Date.UTC(2026, 0, 15, 12, 0, 15);

let database: OpenedDatabase;
let n = 0;

before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

/** An account with 2FA on, enrolled the way the settings page does it, at time `at`. */
async function enrolledUser(at = T0): Promise<{ id: number; secret: string; codes: string[] }> {
  n += 1;
  const { id } = await createUser(database.db, { username: `U${n}`, email: `u${n}@example.com`, passwordHash: null });
  const secret = generateTotpSecret();
  await startEnrolment(database.db, box, id, secret);
  const codes = await confirmEnrolment(database.db, box, id, totpCodeAt(secret, at), at);
  assert.ok(codes, 'enrolment confirmed');
  return { id, secret, codes };
}

describe('enrolment', () => {
  test('the pending secret is sealed, not active, and becomes the (sealed) secret only with a right code', async () => {
    const { id } = await createUser(database.db, { username: 'Pend', email: 'pend@example.com', passwordHash: null });
    const secret = generateTotpSecret();
    await startEnrolment(database.db, box, id, secret);
    const row = await database.db.selectFrom('chatbot_schema.app_user').selectAll().where('idappuser', '=', id).executeTakeFirstOrThrow();
    assert.equal(row.is_2fa_enabled, false);
    assert.equal(row.totp_secret, null);
    assert.match(row.txtotp_pending_secret ?? '', /^v1\./);
    assert.ok(!row.txtotp_pending_secret?.includes(secret));
    assert.equal((await readPendingSecret(database.db, box, id))?.base32, secret);

    assert.equal(await confirmEnrolment(database.db, box, id, '000000', T0), null);
    assert.equal(await confirmEnrolment(database.db, box, id, totpCodeAt(secret, T0 - 2 * STEP_MS), T0), null);
    const codes = await confirmEnrolment(database.db, box, id, totpCodeAt(secret, T0), T0);
    assert.equal(codes?.length, 10);
    const after = await database.db.selectFrom('chatbot_schema.app_user').selectAll().where('idappuser', '=', id).executeTakeFirstOrThrow();
    assert.equal(after.is_2fa_enabled, true);
    assert.match(after.totp_secret ?? '', /^v1\./);
    assert.equal(box.decrypt(after.totp_secret ?? ''), secret);
    assert.equal(after.txtotp_pending_secret, null);
    const hashes = await database.db.selectFrom('chatbot_schema.recovery_code').select('txhash').where('idappuser', '=', id).execute();
    assert.equal(hashes.length, 10);
    for (const h of hashes) assert.match(h.txhash, /^\$argon2id\$/);
  });

  test('an abandoned enrolment expires: its secret can no longer be confirmed', async () => {
    const { id } = await createUser(database.db, { username: 'Late', email: 'late@example.com', passwordHash: null });
    const secret = generateTotpSecret();
    await startEnrolment(database.db, box, id, secret);
    await database.db
      .updateTable('chatbot_schema.app_user')
      .set({ dttotp_pending_expires: sql`now() - interval '1 second'` })
      .where('idappuser', '=', id)
      .execute();
    assert.equal(await readPendingSecret(database.db, box, id), null);
    assert.equal(await confirmEnrolment(database.db, box, id, totpCodeAt(secret, T0), T0), null);
    assert.equal((await readTotpState(database.db, id))?.enabled, false);
  });
});

describe('codes at sign-in (pinned clock)', () => {
  test('drift ±1 accepted, ±2 refused', async () => {
    const u = await enrolledUser(T0 - 10 * STEP_MS);
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 - 2 * STEP_MS), T0), { ok: false });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 - STEP_MS), T0), { ok: true, kind: 'totp' });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 + 2 * STEP_MS), T0), { ok: false });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 + STEP_MS), T0), { ok: true, kind: 'totp' });
  });

  test('the same code twice: refused the second time', async () => {
    const u = await enrolledUser(T0 - 10 * STEP_MS);
    const code = totpCodeAt(u.secret, T0);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, code, T0)).ok, true);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, code, T0)).ok, false);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, code, T0 + 20_000)).ok, false, 'still refused later in the window');
  });

  test('an earlier step after a later one: refused', async () => {
    const u = await enrolledUser(T0 - 10 * STEP_MS);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 + STEP_MS), T0)).ok, true);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0), T0)).ok, false);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 - STEP_MS), T0)).ok, false);
  });

  test('the code that confirmed the enrolment cannot sign in', async () => {
    const u = await enrolledUser(T0);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0), T0)).ok, false);
    assert.equal((await verifyAndConsumeProof(database.db, box, u.id, totpCodeAt(u.secret, T0 + STEP_MS), T0 + STEP_MS)).ok, true);
  });

  test(`concurrent submits of one code: exactly one succeeds${testDbKind === 'postgres' ? '' : ' (bites only on PostgreSQL)'}`, async () => {
    for (let round = 0; round < 5; round++) {
      const u = await enrolledUser(T0 - 10 * STEP_MS);
      const code = totpCodeAt(u.secret, T0);
      const results = await Promise.all(Array.from({ length: 8 }, () => verifyAndConsumeProof(database.db, box, u.id, code, T0)));
      assert.equal(results.filter((r) => r.ok).length, 1, `round ${round}`);
    }
  });

  test('consumeTotpStep alone: of 10 simultaneous updates of one step, one wins (bites only on PostgreSQL)', async () => {
    const u = await enrolledUser(T0 - 10 * STEP_MS);
    const results = await Promise.all(Array.from({ length: 10 }, () => consumeTotpStep(database.db, u.id, 1_000_000_000)));
    assert.equal(results.filter(Boolean).length, 1);
  });

  test('a secret sealed under another APP_SECRET matches nothing (no 500)', async () => {
    const u = await enrolledUser(T0 - 10 * STEP_MS);
    const other = totpSecretBox('another-secret-that-is-long-enough-0123');
    assert.deepEqual(await verifyAndConsumeProof(database.db, other, u.id, totpCodeAt(u.secret, T0), T0), { ok: false });
  });
});

describe('recovery codes', () => {
  test('each works once, in any case and with or without dashes; the count goes down', async () => {
    const u = await enrolledUser();
    const [first, second] = u.codes;
    assert.ok(first && second);
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, first.toLowerCase(), T0), { ok: true, kind: 'recovery', recoveryCodesLeft: 9 });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, first, T0), { ok: false });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, second.replace(/-/g, ''), T0), { ok: true, kind: 'recovery', recoveryCodesLeft: 8 });
    assert.deepEqual(await verifyAndConsumeProof(database.db, box, u.id, 'ZZZZ-ZZZZ-ZZZZ', T0), { ok: false });
  });

  test(`one code submitted twice at once is used once${testDbKind === 'postgres' ? '' : ' (bites only on PostgreSQL)'}`, async () => {
    const u = await enrolledUser();
    const code = u.codes[3] ?? '';
    const results = await Promise.all([
      useRecoveryCode(database.db, u.id, code),
      useRecoveryCode(database.db, u.id, code),
      useRecoveryCode(database.db, u.id, code),
    ]);
    assert.equal(results.filter((r) => r !== null).length, 1);
  });
});

describe('reset and adoption', () => {
  test('resetTwoFactor clears secret, pending enrolment, last step, codes and every session', async () => {
    const u = await enrolledUser();
    await startEnrolment(database.db, box, u.id, generateTotpSecret());
    await database.db
      .insertInto('chatbot_schema.session')
      .values({ idsession: 'a'.repeat(64), idappuser: u.id, dtexpires: new Date(Date.now() + 60_000) })
      .execute();
    await resetTwoFactor(database.db, u.id);
    const row = await database.db.selectFrom('chatbot_schema.app_user').selectAll().where('idappuser', '=', u.id).executeTakeFirstOrThrow();
    assert.deepEqual(
      [row.is_2fa_enabled, row.totp_secret, row.totp_last_step, row.txtotp_pending_secret, row.dttotp_pending_expires],
      [false, null, null, null, null],
    );
    const codes = await database.db.selectFrom('chatbot_schema.recovery_code').select('idrecovery_code').where('idappuser', '=', u.id).execute();
    assert.equal(codes.length, 0);
    const sessions = await database.db.selectFrom('chatbot_schema.session').select('idsession').where('idappuser', '=', u.id).execute();
    assert.equal(sessions.length, 0);
  });

  test('sealAdoptedTotpSecrets seals plaintext base32 secrets once; the same codes keep working', async () => {
    const { id } = await createUser(database.db, { username: 'Flask', email: 'flask@example.com', passwordHash: null });
    const plain = 'JBSWY3DPEHPK3PXP';
    await database.db.updateTable('chatbot_schema.app_user').set({ totp_secret: plain, is_2fa_enabled: true }).where('idappuser', '=', id).execute();
    assert.equal(await sealAdoptedTotpSecrets(database.db, box), 1);
    assert.equal(await sealAdoptedTotpSecrets(database.db, box), 0, 'nothing left the second time');
    const row = await database.db.selectFrom('chatbot_schema.app_user').select('totp_secret').where('idappuser', '=', id).executeTakeFirstOrThrow();
    assert.match(row.totp_secret ?? '', /^v1\./);
    assert.equal(box.decrypt(row.totp_secret ?? ''), plain);
    assert.equal((await verifyAndConsumeProof(database.db, box, id, totpCodeAt(plain, T0), T0)).ok, true);
  });
});
