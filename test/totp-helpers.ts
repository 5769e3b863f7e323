import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { TOTP_STEP_S, totpCodeAt } from '../src/auth/totp.ts';
import type { Db } from '../src/db/database.ts';
import type { TestClient } from './client.ts';

/** The enrolment page shows the secret grouped for typing; an authenticator app takes it without the spaces. */
export function secretOnPage(body: string): string {
  const m = /data-testid="totp-secret">([A-Z2-7 ]+)</.exec(body);
  assert.ok(m?.[1], 'the enrolment page shows the secret as text');
  return m[1].replace(/ /g, '');
}

export function recoveryCodesOnPage(body: string): string[] {
  const m = /data-testid="recovery-codes">([^<]*)</.exec(body);
  assert.ok(m?.[1], 'the page shows the recovery codes');
  return m[1].trim().split('\n');
}

/** The code of the next time step: the current one was used by the confirmation (a code is accepted once). */
export const nextCode = (secret: string) => totpCodeAt(secret, Date.now() + TOTP_STEP_S * 1000);
export const currentCode = (secret: string) => totpCodeAt(secret, Date.now());

/** As if the last accepted code were long ago, so a test can use the current code again (tests only). */
export async function forgetLastStep(db: Db, email: string): Promise<void> {
  await sql`UPDATE chatbot_schema.app_user SET totp_last_step = NULL WHERE lower(txemail) = lower(${email})`.execute(db);
}

/**
 * Turns 2FA on for the signed-in user of `c` through the settings page; returns the secret, the recovery codes and the
 * code the confirmation used (a replay test needs that one: the current code may belong to the next step by then).
 */
export async function enrolThroughSettings(c: TestClient): Promise<{ secret: string; codes: string[]; confirmationCode: string }> {
  await c.get('/settings/2fa');
  const generated = await c.post('/settings/2fa', { action: 'generate' });
  assert.equal(generated.statusCode, 303, generated.body);
  const page = await c.get('/settings/2fa');
  const secret = secretOnPage(page.body);
  const confirmationCode = currentCode(secret);
  const confirmed = await c.post('/settings/2fa', { action: 'confirm', otp_code: confirmationCode });
  assert.equal(confirmed.statusCode, 200, confirmed.body);
  return { secret, codes: recoveryCodesOnPage(confirmed.body), confirmationCode };
}
