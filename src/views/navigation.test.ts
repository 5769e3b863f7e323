import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';

// The navbar offers only pages that exist: a link to a page still to come is a 404 for whoever clicks it.
let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

async function navLinks(c: TestClient): Promise<string[]> {
  const page = await c.get('/chat');
  const nav = /<ul class="navbar-nav[^"]*">([\s\S]*?)<\/ul>/.exec(page.body)?.[1] ?? '';
  return [...nav.matchAll(/href="([^"]+)"/g)].map((m) => m[1] as string);
}

test('every link of the navbar answers 200, for an admin and for a user', async () => {
  const admin = new TestClient(t.app);
  await admin.register({ username: 'Ada', email: 'ada@example.com' });
  const user = new TestClient(t.app);
  await user.register({ username: 'Bob', email: 'bob@example.com' });
  const adminLinks = await navLinks(admin);
  assert.ok(adminLinks.includes('/admin/models'), adminLinks.join(', '));
  const userLinks = await navLinks(user);
  assert.ok(!userLinks.includes('/admin/models'), 'no admin page offered to a user');
  for (const [c, links] of [
    [admin, adminLinks],
    [user, userLinks],
  ] as const) {
    for (const href of links) assert.equal((await c.get(href)).statusCode, 200, href);
  }
});

test('one’s own usage is reachable: from the menu and from Settings, and only its own menu item is marked current', async () => {
  const user = new TestClient(t.app);
  await user.register({ username: 'Carol', email: 'carol@example.com' });
  assert.ok((await navLinks(user)).includes('/settings/usage'));
  assert.match((await user.get('/settings')).body, /<a[^>]*href="\/settings\/usage"[^>]*>[^<]*usage/i);
  const page = await user.get('/settings/usage');
  assert.equal(page.statusCode, 200);
  const nav = /<ul class="navbar-nav[^"]*">([\s\S]*?)<\/ul>/.exec(page.body)?.[1] ?? '';
  const current = [...nav.matchAll(/<a[^>]*aria-current="page"[^>]*href="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(current, ['/settings/usage']);
});
