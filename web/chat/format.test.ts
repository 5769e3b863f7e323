import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, titleFromPrompt } from './format.ts';

test('formatDuration: tenths below ten seconds, whole seconds below a minute, then minutes and seconds', () => {
  assert.equal(formatDuration(0), '0.0 s');
  assert.equal(formatDuration(843), '0.8 s');
  assert.equal(formatDuration(9_940), '9.9 s');
  assert.equal(formatDuration(12_400), '12 s');
  assert.equal(formatDuration(59_400), '59 s');
  assert.equal(formatDuration(125_000), '2 min 5 s');
  assert.equal(formatDuration(-5), '0.0 s');
});

test('titleFromPrompt: one line, at most 60 characters, never half an emoji', () => {
  assert.equal(titleFromPrompt('  Hello\n\n  world  '), 'Hello world');
  assert.equal(titleFromPrompt('   '), 'New chat');
  const long = `${'a'.repeat(58)}🌍🌍🌍`;
  assert.equal(titleFromPrompt(long), `${'a'.repeat(58)}🌍…`);
  assert.equal([...titleFromPrompt(long)].length, 60);
  assert.equal(titleFromPrompt('x'.repeat(60)), 'x'.repeat(60));
});
