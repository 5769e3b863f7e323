import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError } from './errors.ts';
import { parseFormStrict } from './form-parser.ts';

test('decodes percent-encoding and + as a space', () => {
  assert.deepEqual(parseFormStrict('name=Ada+Lovelace&email=ada%40example.com&city=K%C3%B6ln&empty=&flag'), {
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    city: 'Köln',
    empty: '',
    flag: '',
  });
});

test('a repeated field becomes an array, so a schema expecting one string refuses it', () => {
  assert.deepEqual(parseFormStrict('email=a%40x.com&email=b%40x.com&email=c'), { email: ['a@x.com', 'b@x.com', 'c'] });
});

test('__proto__ is an ordinary own field', () => {
  const parsed = parseFormStrict('__proto__=x&constructor=y');
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  assert.equal(Object.hasOwn(parsed, '__proto__'), true);
  assert.equal(parsed.constructor, 'y');
});

for (const [label, body] of [
  ['an invalid UTF-8 sequence', 'email=%FF%FE%40x.com'],
  ['a truncated sequence', 'name=%E0%A4%A'],
  ['an encoded surrogate', 'name=%ED%A0%80'],
  ['a bad escape in a key', '%ZZ=1'],
  ['raw invalid bytes (decoded as U+FFFD)', 'name=\ufffd'],
] as const) {
  test(`${label} is a 400`, () => {
    assert.throws(
      () => parseFormStrict(body),
      (err: Error) => err instanceof BadRequestError && /UTF-8/.test(err.message),
    );
  });
}

for (const [label, body] of [
  ['%00 in a value', 'name=Ad%00a'],
  ['%00 in a key', 'na%00me=Ada'],
  ['a raw NUL', 'name=Ad\u0000a'],
] as const) {
  test(`${label} is a 400 that names the NUL (PostgreSQL cannot store it)`, () => {
    assert.throws(
      () => parseFormStrict(body),
      (err: Error) => err instanceof BadRequestError && /NUL/.test(err.message),
    );
  });
}
