import { randomInt } from 'node:crypto';
import * as OTPAuth from 'otpauth';

/** RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30-second steps. */
export const TOTP_STEP_S = 30;
export const TOTP_DIGITS = 6;
/** A code of the previous or next step is accepted too: phones' clocks drift and people type slowly. */
export const TOTP_DRIFT_STEPS = 1;
/** 160 bits: RFC 4226 §4 recommends it, and it is what authenticator apps expect. */
const SECRET_BYTES = 20;

/** Milliseconds since the epoch; tests pin it. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

export function generateTotpSecret(): string {
  return new OTPAuth.Secret({ size: SECRET_BYTES }).base32;
}

function totpOf(secretBase32: string, appName = 'Parley', email = ''): OTPAuth.TOTP {
  return new OTPAuth.TOTP({
    issuer: appName,
    label: email || 'account',
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_STEP_S,
    secret: OTPAuth.Secret.fromBase32(secretBase32),
  });
}

/** `otpauth://totp/<APP_NAME>:<email>?issuer=<APP_NAME>&secret=…`, the text of the enrolment QR code. */
export function otpauthUri(secretBase32: string, appName: string, email: string): string {
  return totpOf(secretBase32, appName, email).toString();
}

export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_S);
}

/**
 * The time step whose code `code` is, within ±TOTP_DRIFT_STEPS of now, or null. The caller still has to check
 * that this step is later than the last one accepted (no replay): that is a database decision (totp-queries.ts).
 * otpauth's validate() returns the step difference, so 0 is a valid code of the current step: compare with null.
 */
export function matchTotpStep(secretBase32: string, code: string, nowMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  let totp: OTPAuth.TOTP;
  try {
    totp = totpOf(secretBase32);
  } catch {
    return null; // not base32 (a damaged adopted secret): no code matches
  }
  const delta = totp.validate({ token: code, timestamp: nowMs, window: TOTP_DRIFT_STEPS });
  return delta === null ? null : stepAt(nowMs) + delta;
}

/** The code an authenticator shows at `nowMs` (tests and the browser journey compute codes with it). */
export function totpCodeAt(secretBase32: string, nowMs: number): string {
  return totpOf(secretBase32).generate({ timestamp: nowMs });
}

/** Whether a stored value is an unsealed base32 secret (as the Flask prototype stored them). */
export function isPlainBase32Secret(value: string): boolean {
  return /^[A-Z2-7]+=*$/i.test(value) && !value.startsWith('v1.');
}

/** `ABCD EFGH …`: the secret as people type it into an authenticator by hand. */
export function groupSecret(secretBase32: string): string {
  return secretBase32.replace(/(.{4})(?=.)/g, '$1 ');
}

// Crockford's base32 alphabet: no I, L, O, U, so a code read off paper is not misread.
const RECOVERY_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** 12 characters of 5 bits: 60 bits each (the issue asks for at least 50). */
const RECOVERY_CODE_CHARS = 12;
export const RECOVERY_CODE_COUNT = 10;

/** A fresh recovery code, shown as `XXXX-XXXX-XXXX`. */
export function generateRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < RECOVERY_CODE_CHARS; i++) code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return code.replace(/(.{4})(?=.)/g, '$1-');
}

/** What is hashed and compared: case, dashes and spaces do not matter; O and I/L read as 0 and 1. */
export function normalizeRecoveryCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

/** A recovery code has the length of one; anything else is not worth an argon2 verification. */
export function looksLikeRecoveryCode(input: string): boolean {
  const n = normalizeRecoveryCode(input);
  return n.length === RECOVERY_CODE_CHARS && [...n].every((c) => RECOVERY_ALPHABET.includes(c));
}
