import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { assetUrl } from '../views/assets.ts';

const root = path.resolve(import.meta.dirname, '../..');
let t: TestApp;
let signedIn: TestClient;
before(async () => {
  t = await startTestApp();
  signedIn = new TestClient(t.app);
  await signedIn.register({ username: 'Ada', email: 'ada@example.com' });
});
after(() => t.close());

const bundle = () => assetUrl('chat');
const files = ['/static/app.css', '/static/chat.css', '/static/vendor/css/bootstrap.min.css', '/static/vendor/js/bootstrap.bundle.min.js'];

for (const [label, url] of [...files.map((f) => [f, () => f] as const), ['the chat bundle', bundle] as const]) {
  test(`${label} carries no cookie, for a new visitor and a signed-in one (a shared cache could hand it to others)`, async () => {
    const fresh = await t.app.inject({ method: 'GET', url: url() });
    assert.equal(fresh.statusCode, 200, url());
    assert.equal(fresh.headers['set-cookie'], undefined);
    const known = await t.app.inject({
      method: 'GET',
      url: url(),
      headers: { cookie: `${signedIn.cookieHeader()}; parley_csrf=not-a-valid-token; parley_flash=left-by-a-redirect` },
    });
    assert.equal(known.statusCode, 200, url());
    assert.equal(known.headers['set-cookie'], undefined);
  });
}

test('the bundle has its content hash in its name and is cached for a year, immutable', async () => {
  assert.match(bundle(), /^\/static\/build\/chat-[A-Z2-7]{8}\.mjs$/);
  const res = await t.app.inject({ method: 'GET', url: bundle() });
  assert.match(String(res.headers['content-type']), /javascript/);
  assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
  const map = await t.app.inject({ method: 'GET', url: `${bundle()}.map` });
  assert.equal(map.statusCode, 200);
  assert.equal(map.headers['cache-control'], 'public, max-age=31536000, immutable');
});

test('files without a hash in their name are revalidated every time (no-cache), with a validator for a cheap 304', async () => {
  for (const url of [...files, '/static/build/manifest.json']) {
    const res = await t.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    assert.equal(res.headers['cache-control'], 'no-cache', url);
    const again = await t.app.inject({ method: 'GET', url, headers: { 'if-none-match': String(res.headers.etag) } });
    assert.equal(again.statusCode, 304, url);
  }
});

test('the chat page loads the hashed bundle, which exists', async () => {
  const page = await signedIn.get('/chat');
  assert.equal(page.statusCode, 200);
  assert.ok(page.body.includes(`<script src="${bundle()}" defer type="module"></script>`));
  assert.doesNotMatch(page.body, /\/static\/build\/chat\.mjs/);
});

test('pages still set the CSRF cookie (the token they carry is bound to it)', async () => {
  const res = await t.app.inject({ method: 'GET', url: '/login' });
  const cookie = (res.cookies as Array<{ name: string; value: string }>).find((c) => c.name === 'parley_csrf');
  assert.ok(cookie);
  const again = await t.app.inject({ method: 'GET', url: '/register', cookies: { parley_csrf: cookie.value } });
  assert.equal(again.headers['set-cookie'], undefined, 'a valid cookie is kept, not replaced');
  assert.equal(/<meta name="csrf-token" content="([^"]+)">/.exec(again.body)?.[1], /<meta name="csrf-token" content="([^"]+)">/.exec(res.body)?.[1]);
});

test('a build deletes the files of earlier builds and keeps the current ones', () => {
  const stale = path.join(root, 'public/build/chat-AAAAAAAA.mjs');
  writeFileSync(stale, '// an earlier build');
  const build = spawnSync(process.execPath, ['scripts/build-web.ts'], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  assert.equal(existsSync(stale), false);
  const manifest = JSON.parse(readFileSync(path.join(root, 'public/build/manifest.json'), 'utf8')) as Record<string, string>;
  assert.equal(manifest.chat, bundle(), 'same sources, same name');
  assert.ok(existsSync(path.join(root, manifest.chat!.replace('/static/', 'public/'))));
});
