import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestApp } from '../../test/app.ts';

test('the sign-in page says what to do about a forgotten password: ask an admin for a reset link (no e-mail is sent)', async () => {
  const t = await startTestApp();
  try {
    const res = await t.app.inject({ url: '/login' });
    assert.equal(res.statusCode, 200);
    const text = res.body.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ');
    assert.match(text, /Forgot your password\? Ask an administrator of this site for a password reset link/);
  } finally {
    await t.close();
  }
});

test('without password sign-in (LOCAL_LOGIN=false) there is no password to forget, and no such line', async () => {
  const t = await startTestApp({ LOCAL_LOGIN: 'false' });
  try {
    const res = await t.app.inject({ url: '/login' });
    assert.doesNotMatch(res.body, /Forgot your password/);
  } finally {
    await t.close();
  }
});
