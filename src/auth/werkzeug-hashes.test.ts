import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWerkzeugHash, verifyWerkzeugHash } from './werkzeug-hashes.ts';

// Computed with Python's hashlib exactly as Werkzeug does (hashlib.pbkdf2_hmac / hashlib.scrypt, salt as UTF-8).
const PBKDF2 = 'pbkdf2:sha256:600000$saltsaltsaltsalt$6b1f246a5d703ed2ad2eb101e1b0b2f63e2dfb0aad351abcfcbd77e386b3e7f4';
const SCRYPT =
  'scrypt:32768:8:1$saltsaltsaltsalt$0c57f905b5724ac043691d9c3cc8064a7437da71bca835e5864b0185471e9a8d4a73089faf9c0f5f1c2cab7bb87c325d2b7836e2125817a5c988c8077be75145';

test('recognises the Flask prototype hash formats and nothing else', () => {
  assert.ok(isWerkzeugHash(PBKDF2));
  assert.ok(isWerkzeugHash(SCRYPT));
  assert.ok(!isWerkzeugHash('$argon2id$v=19$m=19456,t=2,p=1$abc$def'));
  assert.ok(!isWerkzeugHash(''));
  assert.ok(!isWerkzeugHash('plaintext'));
});

test('verifies pbkdf2 and scrypt hashes made by Werkzeug', async () => {
  assert.equal(await verifyWerkzeugHash(PBKDF2, 'prototype password'), true);
  assert.equal(await verifyWerkzeugHash(PBKDF2, 'prototype passwore'), false);
  assert.equal(await verifyWerkzeugHash(SCRYPT, 'prototype password'), true);
  assert.equal(await verifyWerkzeugHash(SCRYPT, 'Prototype password'), false);
});

test('refuses absurd parameters instead of burning CPU or memory', async () => {
  assert.equal(await verifyWerkzeugHash('pbkdf2:sha256:999999999$s$00', 'x'), false);
  assert.equal(await verifyWerkzeugHash('scrypt:1073741824:8:1$s$00', 'x'), false);
  assert.equal(await verifyWerkzeugHash('pbkdf2:md5:1000$s$00', 'x'), false);
});
