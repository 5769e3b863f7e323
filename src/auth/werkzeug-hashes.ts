import { pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: string,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

// Caps, so a tampered row cannot make one sign-in burn minutes of CPU or gigabytes of memory.
const MAX_PBKDF2_ITERATIONS = 5_000_000;
const MAX_SCRYPT_COST = 2 ** 20;
const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/**
 * Werkzeug's `generate_password_hash` formats, as the Flask prototype stored them in app_user.password:
 * `pbkdf2:sha256:600000$<salt>$<hex>` and `scrypt:32768:8:1$<salt>$<hex>` (salt used as UTF-8 text, scrypt dklen 64).
 * Verified once so those users can sign in after the adoption; the caller then rehashes with argon2id.
 */
export function isWerkzeugHash(stored: string): boolean {
  return /^(pbkdf2|scrypt)(:[^$]*)?\$[^$]+\$[0-9a-f]+$/.test(stored);
}

export async function verifyWerkzeugHash(stored: string, password: string): Promise<boolean> {
  const [method = '', salt = '', hex = ''] = stored.split('$');
  const [kind, ...args] = method.split(':');
  const expected = Buffer.from(hex, 'hex');
  let actual: Buffer;
  if (kind === 'pbkdf2') {
    const digest = args[0] ?? 'sha256';
    const iterations = args[1] === undefined ? DEFAULT_PBKDF2_ITERATIONS : Number(args[1]);
    if (!['sha256', 'sha512', 'sha1'].includes(digest) || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) return false;
    actual = await pbkdf2Async(password, salt, iterations, expected.length, digest);
  } else if (kind === 'scrypt') {
    const [n, r, p] = args.length === 0 ? [2 ** 15, 8, 1] : args.map(Number);
    if (![n, r, p].every((v) => Number.isInteger(v) && (v as number) > 0) || (n as number) > MAX_SCRYPT_COST || (r as number) > 32 || (p as number) > 16)
      return false;
    actual = await scryptAsync(password, salt, expected.length, {
      N: n as number,
      r: r as number,
      p: p as number,
      maxmem: 132 * (n as number) * (r as number) * (p as number),
    });
  } else {
    return false;
  }
  return expected.length > 0 && timingSafeEqual(actual, expected);
}
