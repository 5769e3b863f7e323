import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { sha256Hex } from './tokens.ts';

test('sha256Hex is SHA-256 of the UTF-8 text, in hex (the stored hashes of keys and tokens depend on it)', () => {
  // FIPS 180-2's test vector, then any text against a Hash object (the form sessions and keys were stored with).
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (text) => {
      assert.equal(sha256Hex(text), createHash('sha256').update(text).digest('hex'));
    }),
  );
});
