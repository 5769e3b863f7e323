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

test('Origin: null is refused even with the right token and Sec-Fetch-Site: same-origin (pages never send no-referrer)', async () => {
  const { startTestApp } = await import('../../test/app.ts');
  const { TestClient } = await import('../../test/client.ts');
  const t = await startTestApp();
  try {
    const c = new TestClient(t.app);
    await c.get('/login');
    const fields = { email: 'nobody@example.com', password: 'not the password' };
    const refused = await c.post('/login', fields, { origin: 'null', 'sec-fetch-site': 'same-origin' });
    assert.equal(refused.statusCode, 403);
    assert.match(refused.body, /Cross-origin request refused/);
    const ownOrigin = await c.post('/login', fields, { origin: new URL(t.config.PUBLIC_URL).origin, 'sec-fetch-site': 'same-origin' });
    assert.equal(ownOrigin.statusCode, 401, 'the same post from our origin reaches the password check');
  } finally {
    await t.close();
  }
});
