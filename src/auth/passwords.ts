import { hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { isWerkzeugHash, verifyWerkzeugHash } from './werkzeug-hashes.ts';

// OWASP's argon2id minimum (m=19 MiB, t=2, p=1); also @node-rs/argon2's defaults, spelled out so a library
// upgrade cannot weaken them silently.
const ARGON2_OPTIONS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_CHARS = 128;

// The package's list is ordered by frequency; the first 1,000 are the ones attackers try first.
const commonPasswords = new Set((dictionary['passwords-common'] as string[]).slice(0, 1000));

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS);
}

export async function verifyPassword(storedHash: string, password: string): Promise<boolean> {
  if (isWerkzeugHash(storedHash)) return verifyWerkzeugHash(storedHash, password);
  try {
    return await verify(storedHash, password);
  } catch {
    return false; // not an argon2 hash (e.g. an empty password of a Google-only account)
  }
}

/** A hash from the Flask prototype (or weaker argon2 parameters) is replaced at the next successful sign-in. */
export function needsRehash(storedHash: string): boolean {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
  return !m || Number(m[1]) < ARGON2_OPTIONS.memoryCost || Number(m[2]) < ARGON2_OPTIONS.timeCost;
}

// Verified against when the e-mail is unknown, so that "no such account" costs the same time as "wrong password".
const dummyHash = hash('parley-dummy-password', ARGON2_OPTIONS);
export async function burnPasswordCheck(password: string): Promise<false> {
  await verifyPassword(await dummyHash, password);
  return false;
}

/** Returns a reason the password is refused, or null. Length counts characters, not bytes; nothing is truncated. */
export function passwordProblem(password: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN_CHARS) return `Use at least ${PASSWORD_MIN_CHARS} characters.`;
  if (length > PASSWORD_MAX_CHARS) return `Use at most ${PASSWORD_MAX_CHARS} characters.`;
  if (commonPasswords.has(password.toLowerCase())) return 'This password is among the most common ones; choose another.';
  return null;
}
