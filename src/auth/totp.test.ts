import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  generateRecoveryCode,
  generateTotpSecret,
  groupSecret,
  looksLikeRecoveryCode,
  matchTotpStep,
  normalizeRecoveryCode,
  otpauthUri,
  stepAt,
  TOTP_STEP_S,
  totpCodeAt,
} from './totp.ts';

// A pinned clock: the middle of a step, so ±1 and ±2 steps are unambiguous.
const NOW = Date.UTC(2026, 0, 15, 12, 0, 15);
const STEP_MS = TOTP_STEP_S * 1000;

test('a fresh secret is 160 bits of base32 (32 characters), different each time', () => {
  const a = generateTotpSecret();
  assert.match(a, /^[A-Z2-7]{32}$/);
  assert.notEqual(a, generateTotpSecret());
});

test('RFC 6238 test vector (SHA-1, T = 59 s): the 6-digit code is 287082', () => {
  // RFC 6238 appendix B: key "12345678901234567890" (ASCII), 8-digit code 94287082; 6 digits keep its last six.
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  assert.equal(totpCodeAt(secret, 59_000), '287082');
});

test('drift: codes of the previous and next step are accepted, two steps away are refused', () => {
  const secret = generateTotpSecret();
  const step = stepAt(NOW);
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, NOW), NOW), step);
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, NOW - STEP_MS), NOW), step - 1);
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, NOW + STEP_MS), NOW), step + 1);
  // A code that happens to equal the current one (1 in a million) would be accepted; the check is about the window.
  const twoBack = totpCodeAt(secret, NOW - 2 * STEP_MS);
  const twoAhead = totpCodeAt(secret, NOW + 2 * STEP_MS);
  const window = [-1, 0, 1].map((d) => totpCodeAt(secret, NOW + d * STEP_MS));
  if (!window.includes(twoBack)) assert.equal(matchTotpStep(secret, twoBack, NOW), null);
  if (!window.includes(twoAhead)) assert.equal(matchTotpStep(secret, twoAhead, NOW), null);
});

test('only six digits are a code; a damaged secret matches nothing (no throw)', () => {
  const secret = generateTotpSecret();
  const code = totpCodeAt(secret, NOW);
  assert.equal(matchTotpStep(secret, `${code}0`, NOW), null);
  assert.equal(matchTotpStep(secret, 'abcdef', NOW), null);
  assert.equal(matchTotpStep('not base32 at all!', '123456', NOW), null);
});

test('the otpauth URI names the app as issuer and the e-mail as account', () => {
  const uri = otpauthUri('JBSWY3DPEHPK3PXP', 'Parley', 'ada@example.com');
  assert.match(uri, /^otpauth:\/\/totp\/Parley:ada%40example\.com\?/);
  const params = new URL(uri).searchParams;
  assert.equal(params.get('issuer'), 'Parley');
  assert.equal(params.get('secret'), 'JBSWY3DPEHPK3PXP');
  assert.equal(params.get('algorithm'), 'SHA1');
  assert.equal(params.get('digits'), '6');
  assert.equal(params.get('period'), '30');
});

test('recovery codes: 12 Crockford base32 characters (60 bits), read forgivingly', () => {
  const codes = new Set(Array.from({ length: 200 }, generateRecoveryCode));
  assert.equal(codes.size, 200);
  for (const c of codes) {
    assert.match(c, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    assert.ok(looksLikeRecoveryCode(c));
  }
  assert.ok(12 * Math.log2(32) >= 50);
  assert.equal(normalizeRecoveryCode('abcd-efgh-jkmn'), 'ABCDEFGHJKMN');
  assert.equal(normalizeRecoveryCode(' o1il 2345 6789 '), '011123456789');
  assert.equal(looksLikeRecoveryCode('123456'), false);
  assert.equal(groupSecret('ABCDEFGHIJ'), 'ABCD EFGH IJ');
});
