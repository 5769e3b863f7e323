import { sql } from 'kysely';
import { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/database.ts';
import { removeAllPasskeys } from './passkey-queries.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { invalidateUserSessions } from './sessions.ts';
import type { ThrottleRule } from './throttle.ts';
import { generateRecoveryCode, isPlainBase32Secret, looksLikeRecoveryCode, matchTotpStep, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from './totp.ts';

/** Contract: 5 wrong codes in 15 minutes lock the account's second step for 15 minutes, across all its sign-ins. */
export const TOTP_CODE_RULE: ThrottleRule = { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
/** One counter per account, shared by the second step and the proofs asked for in settings. */
export const totpThrottleKey = (userId: number) => `totp:${userId}`;
/** An enrolment not confirmed within this long is abandoned. */
export const TOTP_PENDING_MS = 15 * 60_000;
/** Few enough recovery codes left that the user is told to make new ones. */
export const RECOVERY_CODES_LOW = 3;

/** The key that seals TOTP secrets at rest (its own HKDF purpose: it opens nothing else). */
export function totpSecretBox(appSecret: string): SecretBox {
  return new SecretBox(appSecret, 'totp-secret');
}

export interface TotpState {
  enabled: boolean;
  email: string;
  unusedRecoveryCodes: number;
  /** An unconfirmed enrolment that has not expired. */
  hasPendingSecret: boolean;
}

export async function readTotpState(db: Db, userId: number): Promise<TotpState | undefined> {
  const row = await db
    .selectFrom('chatbot_schema.app_user as u')
    .select([
      'u.is_2fa_enabled as enabled',
      'u.txemail as email',
      sql<boolean>`u.txtotp_pending_secret IS NOT NULL AND u.dttotp_pending_expires > now()`.as('hasPendingSecret'),
      (eb) =>
        eb
          .selectFrom('chatbot_schema.recovery_code as r')
          .select(sql<number>`count(*)::int`.as('n'))
          .whereRef('r.idappuser', '=', 'u.idappuser')
          .where('r.dtused', 'is', null)
          .as('unusedRecoveryCodes'),
    ])
    .where('u.idappuser', '=', userId)
    .executeTakeFirst();
  return row && { ...row, unusedRecoveryCodes: Number(row.unusedRecoveryCodes ?? 0), hasPendingSecret: Boolean(row.hasPendingSecret) };
}

/** A stored secret opened; null when it cannot be (tampered with, another APP_SECRET): then no code matches. */
function openSecret(box: SecretBox, stored: string | null): string | null {
  if (!stored) return null;
  try {
    return box.decrypt(stored);
  } catch {
    return null;
  }
}

/**
 * `reused`: a right code of a step already accepted (typically the one that just confirmed enrolment or signed in,
 * still on the screen). Only someone who has the secret can produce one, so callers give the attempt back instead of
 * counting it as wrong; it still never proves anything.
 */
export type ProofResult = { ok: true; kind: 'totp' } | { ok: true; kind: 'recovery'; recoveryCodesLeft: number } | { ok: false; reused?: true };

/** What a person is told about a reused code. */
export const CODE_JUST_USED_MESSAGE = 'This code was just used: wait for the next one.';

/**
 * Checks a code of the account's active secret or one of its unused recovery codes, and consumes it: the code's
 * time step becomes the last accepted one, the recovery code is marked used. Each is decided by one conditional
 * UPDATE, so of two submits of one code (even at the same instant, from two sign-ins) exactly one succeeds.
 * The caller has reserved an attempt (TOTP_CODE_RULE) before calling.
 */
export async function verifyAndConsumeProof(db: Db, box: SecretBox, userId: number, input: string, nowMs: number): Promise<ProofResult> {
  const code = input.replace(/\s/g, '');
  if (/^\d{6}$/.test(code)) {
    const row = await db
      .selectFrom('chatbot_schema.app_user')
      .select(['totp_secret', 'totp_last_step'])
      .where('idappuser', '=', userId)
      .where('is_2fa_enabled', '=', true)
      .executeTakeFirst();
    const secret = openSecret(box, row?.totp_secret ?? null);
    const step = secret ? matchTotpStep(secret, code, nowMs) : null;
    if (step === null) return { ok: false };
    if (row?.totp_last_step != null && step <= Number(row.totp_last_step)) return { ok: false, reused: true };
    // Refused here only when a concurrent submit of this very code (or a later one) was accepted in between.
    return (await consumeTotpStep(db, userId, step)) ? { ok: true, kind: 'totp' } : { ok: false, reused: true };
  }
  if (!looksLikeRecoveryCode(code)) return { ok: false };
  const left = await useRecoveryCode(db, userId, code);
  return left === null ? { ok: false } : { ok: true, kind: 'recovery', recoveryCodesLeft: left };
}

/** RFC 6238 §5.2: a code is accepted once. Only a step later than the last accepted one moves it; the row decides. */
export async function consumeTotpStep(db: Db, userId: number, step: number): Promise<boolean> {
  const updated = await db
    .updateTable('chatbot_schema.app_user')
    .set({ totp_last_step: step })
    .where('idappuser', '=', userId)
    .where('is_2fa_enabled', '=', true)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
    .returning('idappuser')
    .executeTakeFirst();
  return updated !== undefined;
}

/**
 * Marks the matching unused recovery code used and returns how many are left, or null when none matches.
 * The hashes are argon2id with their own salts, so each unused one is verified (at most 10, in parallel).
 */
export async function useRecoveryCode(db: Db, userId: number, input: string): Promise<number | null> {
  const normalized = normalizeRecoveryCode(input);
  const rows = await db
    .selectFrom('chatbot_schema.recovery_code')
    .select(['idrecovery_code as id', 'txhash as hash'])
    .where('idappuser', '=', userId)
    .where('dtused', 'is', null)
    .execute();
  const matches = await Promise.all(rows.map((r) => verifyPassword(r.hash, normalized)));
  const match = rows[matches.indexOf(true)];
  if (!match) return null;
  // Guarded on dtused: a code used by a concurrent request in the meantime is not used twice.
  const used = await db
    .updateTable('chatbot_schema.recovery_code')
    .set({ dtused: sql`now()` })
    .where('idrecovery_code', '=', match.id)
    .where('dtused', 'is', null)
    .returning('idrecovery_code')
    .executeTakeFirst();
  if (!used) return null;
  const left = await db
    .selectFrom('chatbot_schema.recovery_code')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('idappuser', '=', userId)
    .where('dtused', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(left.n);
}

/** Wrong codes still allowed before the account's second step locks (for the form's "N attempts left"). */
export async function totpAttemptsRemaining(db: Db, userId: number): Promise<number> {
  const row = await db
    .selectFrom('chatbot_schema.login_throttle')
    .select('nfailures')
    .where('txkey', '=', totpThrottleKey(userId))
    .where('dtwindow_start', '>', sql<Date>`now() - make_interval(secs => ${TOTP_CODE_RULE.windowMs / 1000})`)
    .executeTakeFirst();
  return Math.max(0, TOTP_CODE_RULE.maxFailures - (row?.nfailures ?? 0));
}

/** Starts (or restarts) an enrolment: a fresh secret, sealed, waiting for confirmation. The active secret is untouched. */
export async function startEnrolment(db: Db, box: SecretBox, userId: number, secretBase32: string): Promise<void> {
  await db
    .updateTable('chatbot_schema.app_user')
    .set({ txtotp_pending_secret: box.encrypt(secretBase32), dttotp_pending_expires: sql`now() + make_interval(secs => ${TOTP_PENDING_MS / 1000})` })
    .where('idappuser', '=', userId)
    .execute();
}

/** The unexpired pending secret in base32 (for the enrolment page and its QR code), or null. */
export async function readPendingSecret(db: Db, box: SecretBox, userId: number): Promise<{ sealed: string; base32: string } | null> {
  const row = await db
    .selectFrom('chatbot_schema.app_user')
    .select('txtotp_pending_secret as sealed')
    .where('idappuser', '=', userId)
    .where('dttotp_pending_expires', '>', sql<Date>`now()`)
    .executeTakeFirst();
  const base32 = openSecret(box, row?.sealed ?? null);
  return row?.sealed && base32 ? { sealed: row.sealed, base32 } : null;
}

/**
 * Confirms an enrolment with a code of the pending secret: it becomes the account's secret, 2FA is on, and a fresh
 * set of recovery codes replaces any old one. Returns the codes (shown once), or null when the code is wrong or
 * the enrolment expired or was replaced meanwhile (the UPDATE is guarded on the very sealed value that was checked).
 */
export async function confirmEnrolment(db: Db, box: SecretBox, userId: number, code: string, nowMs: number): Promise<string[] | null> {
  const pending = await readPendingSecret(db, box, userId);
  const step = pending ? matchTotpStep(pending.base32, code.replace(/\s/g, ''), nowMs) : null;
  if (!pending || step === null) return null;
  const codes = freshRecoveryCodes();
  const hashes = await Promise.all(codes.map((c) => hashPassword(normalizeRecoveryCode(c))));
  const done = await db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('chatbot_schema.app_user')
      .set({ totp_secret: pending.sealed, is_2fa_enabled: true, totp_last_step: step, txtotp_pending_secret: null, dttotp_pending_expires: null })
      .where('idappuser', '=', userId)
      .where('txtotp_pending_secret', '=', pending.sealed)
      .where('dttotp_pending_expires', '>', sql<Date>`now()`)
      .returning('idappuser')
      .executeTakeFirst();
    if (!updated) return false;
    await replaceRecoveryCodes(trx, userId, hashes);
    return true;
  });
  return done ? codes : null;
}

/** New recovery codes for an account with 2FA on (the old ones stop working). Returns them, to show once. */
export async function regenerateRecoveryCodes(db: Db, userId: number): Promise<string[]> {
  const codes = freshRecoveryCodes();
  const hashes = await Promise.all(codes.map((c) => hashPassword(normalizeRecoveryCode(c))));
  await db.transaction().execute((trx) => replaceRecoveryCodes(trx, userId, hashes));
  return codes;
}

function freshRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
}

async function replaceRecoveryCodes(db: Db, userId: number, hashes: string[]): Promise<void> {
  await db.deleteFrom('chatbot_schema.recovery_code').where('idappuser', '=', userId).execute();
  await db
    .insertInto('chatbot_schema.recovery_code')
    .values(hashes.map((txhash) => ({ idappuser: userId, txhash })))
    .execute();
}

/** Everything 2FA stored for the account, gone: secret, pending enrolment, last step, recovery codes. */
async function clearTwoFactor(db: Db, userId: number): Promise<void> {
  await db
    .updateTable('chatbot_schema.app_user')
    .set({ is_2fa_enabled: false, totp_secret: null, totp_last_step: null, txtotp_pending_secret: null, dttotp_pending_expires: null })
    .where('idappuser', '=', userId)
    .execute();
  await db.deleteFrom('chatbot_schema.recovery_code').where('idappuser', '=', userId).execute();
}

/** The user turns 2FA off (after a proof): their other sessions end, the one they use stays. */
export async function disableTwoFactor(db: Db, userId: number, keepSessionId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await clearTwoFactor(trx, userId);
    await trx.deleteFrom('chatbot_schema.session').where('idappuser', '=', userId).where('idsession', '<>', keepSessionId).execute();
  });
}

/**
 * An administrator's reset (the admin user page and `npm run user:reset-2fa`): 2FA off, codes and passkeys gone, and every
 * session of the account ended, since one may have been opened with the lost device. Auditing is the caller's.
 */
export async function resetTwoFactor(db: Db, userId: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await clearTwoFactor(trx, userId);
    await removeAllPasskeys(trx, userId); // a passkey is a second factor too (decision record 017)
    await invalidateUserSessions(trx, userId);
  });
}

/**
 * Seals the plaintext base32 secrets an adopted Flask-prototype database holds (its users keep their authenticator:
 * the secret is the same, only stored encrypted). Runs after the migrations, where APP_SECRET is known (buildApp):
 * a migration has no key. Each row is updated only if it still holds the value read, so processes starting
 * together do not seal twice; once nothing is left it is one small query. Returns how many were sealed.
 */
export async function sealAdoptedTotpSecrets(db: Db, box: SecretBox): Promise<number> {
  const rows = await db
    .selectFrom('chatbot_schema.app_user')
    .select(['idappuser as id', 'totp_secret as secret'])
    .where('totp_secret', 'is not', null)
    .where('totp_secret', 'not like', 'v1.%')
    .execute();
  let sealed = 0;
  for (const row of rows) {
    if (!row.secret || !isPlainBase32Secret(row.secret)) continue; // not a secret at all: left for an admin reset
    const result = await db
      .updateTable('chatbot_schema.app_user')
      .set({ totp_secret: box.encrypt(row.secret.toUpperCase().replace(/=+$/, '')) })
      .where('idappuser', '=', row.id)
      .where('totp_secret', '=', row.secret)
      .executeTakeFirst();
    sealed += Number(result.numUpdatedRows);
  }
  return sealed;
}
