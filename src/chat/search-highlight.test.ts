import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANGLE_CLOSE, ANGLE_OPEN, MATCH_END, MATCH_START, passageHtml, passageParts, passageText } from './search-highlight.ts';

const S = MATCH_START;
const E = MATCH_END;

test('marks become <mark>, everything else is escaped text', () => {
  const marked = `${ANGLE_OPEN}img src=x onerror=alert(1)${ANGLE_CLOSE} ${S}otters${E} & "more" ${S}otters${E}`;
  const parts = passageParts(marked);
  assert.equal(passageText(parts), '<img src=x onerror=alert(1)> otters & "more" otters');
  assert.equal(passageHtml(parts).value, '&lt;img src=x onerror=alert(1)&gt; <mark>otters</mark> &amp; &quot;more&quot; <mark>otters</mark>');
});

test('a mark without its pair is dropped, never trusted', () => {
  assert.deepEqual(passageParts(`a ${S}b c`), [{ text: 'a b c', match: false }]);
  assert.deepEqual(passageParts(`a ${E}b${S}c${E}`), [
    { text: 'a b', match: false },
    { text: 'c', match: true },
  ]);
  assert.equal(passageHtml(passageParts(`${S}<script>${E}`)).value, '<mark>&lt;script&gt;</mark>');
});
