import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptedOrigins } from './csrf.ts';

test('a public origin accepts only itself', () => {
  assert.deepEqual([...acceptedOrigins('https://chat.example.com/')], ['https://chat.example.com']);
});

test('a loopback PUBLIC_URL accepts its loopback aliases on the same port and scheme only', () => {
  const origins = acceptedOrigins('http://localhost:5000');
  assert.deepEqual([...origins].sort(), ['http://127.0.0.1:5000', 'http://[::1]:5000', 'http://localhost:5000']);
  assert.ok(!origins.has('http://localhost:5001'));
  assert.ok(!origins.has('https://localhost:5000'));
  assert.ok(!origins.has('http://evil.example'));
});
