import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BIDI_CONTROLS, DISPLAY_NAME_MAX_GRAPHEMES, displayNameField, displayNameFromClaim, displayNameProblem, graphemeCount } from './display-name.ts';

const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c'];
/** Characters people see, one grapheme each: letters of several scripts (right-to-left ones too), emoji, a decomposed é. */
const seen = fc.constantFrom('a', 'Z', 'é', 'e\u0301', 'ß', 'Ж', 'א', 'ب', '漢', '😀', '👩‍👩‍👧', '🇫🇷', '-', '.', "'");
const goodName = fc.array(seen, { minLength: 1, maxLength: DISPLAY_NAME_MAX_GRAPHEMES }).map((cs) => cs.join(''));

test('every bidi control of the rule is matched, and nothing else in the Basic Multilingual Plane', () => {
  for (const c of BIDI) assert.ok(BIDI_CONTROLS.test(c), c.codePointAt(0)?.toString(16));
  let others = 0;
  for (let cp = 0; cp <= 0xffff; cp++) if (!BIDI.includes(String.fromCharCode(cp)) && BIDI_CONTROLS.test(String.fromCharCode(cp))) others++;
  assert.equal(others, 0);
});

test('property: a name of up to 50 seen characters passes, however many UTF-16 units it takes', () => {
  fc.assert(
    fc.property(goodName, (name) => {
      assert.equal(displayNameProblem(name), undefined, JSON.stringify(name));
      assert.equal(displayNameFromClaim(` ${name} `), name);
    }),
  );
});

test('property: one bidi control anywhere in a name refuses it, and a claim with one is dropped', () => {
  fc.assert(
    fc.property(goodName, fc.constantFrom(...BIDI), fc.nat(), (name, control, at) => {
      const chars = [...name];
      const i = at % (chars.length + 1);
      const lying = [...chars.slice(0, i), control, ...chars.slice(i)].join('');
      assert.match(displayNameProblem(lying) ?? '', /text-direction/);
      assert.equal(displayNameFromClaim(lying), undefined);
    }),
  );
});

test('property: more than 50 seen characters is too long, and the count is graphemes', () => {
  fc.assert(
    fc.property(fc.array(seen, { minLength: DISPLAY_NAME_MAX_GRAPHEMES + 1, maxLength: 80 }), (cs) => {
      const name = cs.join('');
      assert.equal(graphemeCount(name), cs.length);
      assert.match(displayNameProblem(name) ?? '', /too long/);
    }),
  );
});

test('the column holds 100 code points: 21 family emoji (5 code points each) are refused, never cut', () => {
  const families = '👩‍👩‍👧'.repeat(20); // 20 characters seen, 100 code points: one more family is over
  assert.equal(displayNameProblem(families), undefined);
  assert.match(displayNameProblem(`${families}👩‍👩‍👧`) ?? '', /too long/);
});

test('the field: trimmed, empty and control characters refused, a repeated field said so', () => {
  const field = displayNameField('Name', 'Enter your name.');
  assert.deepEqual(field.safeParse('  Ada  ').data, 'Ada');
  assert.equal(field.safeParse('   ').error?.issues[0]?.message, 'Enter your name.');
  assert.match(field.safeParse('a\u0007b').error?.issues[0]?.message ?? '', /not allowed/);
  assert.match(field.safeParse('a\u0085b').error?.issues[0]?.message ?? '', /not allowed/);
  assert.match(field.safeParse(['a', 'b']).error?.issues[0]?.message ?? '', /given once/);
  assert.equal(displayNameFromClaim(42), undefined);
  assert.equal(displayNameFromClaim(''), undefined);
});
