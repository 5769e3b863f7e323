import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, testConfig } from '../../test/app.ts';
import { addModel } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { openTestDatabase } from '../../test/database.ts';
import { buildApp } from '../app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...values]) => [name as string, values]),
  );
}

/**
 * What in a page a CSP without 'unsafe-inline' would block (or that would need it): a script with a body or
 * without a same-origin src, an on*= handler, a style attribute or element, a javascript: URL.
 */
function inlineCode(html: string): string[] {
  const found: string[] = [];
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (!/\bsrc="\/static\//.test(m[1] ?? '') || (m[2] ?? '').trim() !== '') found.push(`inline script: ${m[0].slice(0, 80)}`);
  }
  for (const [tag] of html.matchAll(/<[a-z][^>]*>/gi)) {
    if (/\son[a-z]+\s*=/i.test(tag)) found.push(`event handler attribute: ${tag.slice(0, 120)}`);
    if (/\sstyle\s*=/i.test(tag)) found.push(`style attribute: ${tag.slice(0, 120)}`);
    if (/^<style\b/i.test(tag)) found.push('style element');
    if (/=\s*["']?\s*javascript:/i.test(tag)) found.push(`javascript: URL: ${tag.slice(0, 120)}`);
  }
  return found;
}

describe('security headers and no inline code, on every kind of page', () => {
  const clients: Record<'anonymous' | 'user' | 'admin', TestClient> = {} as never;
  let chatId = 0;
  let modelId = 0;
  before(async () => {
    clients.anonymous = new TestClient(t.app);
    clients.admin = new TestClient(t.app);
    await clients.admin.register({ username: 'Headers Admin', email: 'headers-admin@example.com' }); // the first account: Admin
    clients.user = new TestClient(t.app);
    await clients.user.register({ username: 'Headers User', email: 'headers-user@example.com' });
    // Never called: the pages only list it. Port 9 (discard) so nothing is ever reached by mistake.
    modelId = await addModel(t.database, 'http://127.0.0.1:9/v1', 'Headers model');
    await clients.user.get('/chat');
    const chat = await clients.user.postJson('/api/chats', { llm: modelId });
    assert.equal(chat.statusCode, 201, chat.body);
    chatId = (chat.json() as { id: number }).id;
  });

  const pages: Array<{ url: () => string; as: keyof typeof clients; status: number }> = [
    { url: () => '/login', as: 'anonymous', status: 200 },
    { url: () => '/register', as: 'anonymous', status: 200 },
    { url: () => '/does-not-exist', as: 'anonymous', status: 404 },
    { url: () => '/chat', as: 'user', status: 200 },
    { url: () => `/chat/${chatId}`, as: 'user', status: 200 },
    { url: () => '/admin/models', as: 'admin', status: 200 },
    { url: () => `/admin/models/${modelId}/edit`, as: 'admin', status: 200 },
  ];

  for (const page of pages) {
    const name = page.url().replace(/\/0\b/, '/:id');
    test(`${name} (${page.as}) sends a CSP without inline scripts or styles, frame-ancestors 'none', nosniff and a Referrer-Policy`, async () => {
      const res = await clients[page.as].get(page.url());
      assert.equal(res.statusCode, page.status, res.body.slice(0, 300));
      const csp = directives(String(res.headers['content-security-policy']));
      for (const kind of ['script-src', 'style-src']) {
        const allowed = csp.get(kind) ?? csp.get('default-src') ?? [];
        assert.ok(allowed.length > 0, `${kind} or default-src is set`);
        for (const unsafe of ["'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", '*', 'data:', 'http:', 'https:'])
          assert.ok(!allowed.includes(unsafe), `${kind} allows ${unsafe}`);
      }
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
      assert.deepEqual(csp.get('object-src'), ["'none'"]);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      // Never no-referrer: with it Chromium posts `Origin: null`, which the CSRF check refuses (the reset link, issue 16).
      assert.match(String(res.headers['referrer-policy']), /^(same-origin|strict-origin(-when-cross-origin)?)$/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      // Plain http in development: no HSTS (it would pin localhost to https).
      assert.equal(res.headers['strict-transport-security'], undefined);
    });

    test(`${name} (${page.as}) has no inline script, event handler or style for the CSP to block`, async () => {
      const res = await clients[page.as].get(page.url());
      assert.equal(res.statusCode, page.status, res.body.slice(0, 300));
      assert.match(res.body, /<script\b[^>]*\bsrc="\/static\//, 'the page loads its scripts (so the check saw some)');
      assert.deepEqual(inlineCode(res.body), []);
    });
  }

  test('the inline-code check finds what it looks for', () => {
    assert.deepEqual(inlineCode('<script src="/static/build/app.mjs"></script><p class="x">online="yes"</p>'), []);
    for (const html of [
      '<script>alert(1)</script>',
      '<script src="https://cdn.example/x.js"></script>',
      '<button onclick="go()">',
      '<form ONSUBMIT = "return confirm()">',
      '<div style="color:red">',
      '<style>p{}</style>',
      '<a href="javascript:alert(1)">',
    ])
      assert.equal(inlineCode(html).length, 1, html);
  });

  test('pages are not cached (they carry a CSRF token)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/login' });
    assert.equal(res.headers['cache-control'], 'no-store');
  });
});

describe('health', () => {
  test('/healthz and /readyz answer 200 with JSON', async () => {
    for (const [url, body] of [
      ['/healthz', { status: 'ok' }],
      ['/readyz', { status: 'ready' }],
    ] as const) {
      const res = await t.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), body);
    }
  });

  test('/readyz is 503 when the database is gone, and /healthz still 200', async () => {
    const database = await openTestDatabase();
    const app = await buildApp({ config: testConfig(), db: database.db });
    await app.ready();
    try {
      await database.close();
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      assert.deepEqual(ready.json(), { status: 'database unreachable' });
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});

describe('error pages leak nothing', () => {
  test('404 is an HTML page in the layout, with no stack', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/no/such/page?x=<script>' });
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /<meta name="csrf-token"/);
    assert.match(res.body, /does not exist/);
    assert.doesNotMatch(res.body, /<script>|Error|at .*:\d+/);
  });

  test('404 under /api is JSON', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/nothing-here' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { error: 'This page does not exist.' });
  });

  test('TRUST_PROXY: true takes the leftmost X-Forwarded-For address, a proxy list only what those proxies added', async () => {
    const database = await openTestDatabase();
    const forwarded = { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }; // a client's own header, then what nginx appended
    try {
      const seen: Record<string, string> = {};
      for (const trust of ['false', 'true', '10.0.0.0/8']) {
        const app = await buildApp({ config: testConfig({ TRUST_PROXY: trust }), db: database.db });
        app.get('/__ip', async (req) => ({ ip: req.ip }));
        await app.ready();
        seen[trust] = (await app.inject({ method: 'GET', url: '/__ip', headers: forwarded, remoteAddress: '10.0.0.2' })).json().ip;
        await app.close();
      }
      assert.deepEqual(seen, { false: '10.0.0.2', true: '6.6.6.6', '10.0.0.0/8': '203.0.113.7' });
    } finally {
      await database.close();
    }
  });

  test('an unexpected error is a generic 500: no message, no stack, no internals', async () => {
    const database = await openTestDatabase();
    const logged: string[] = [];
    const app = await buildApp({
      config: testConfig(),
      db: database.db,
      logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } },
    });
    const secret = 'password=hunter2 host=db.internal';
    app.get('/boom', async () => {
      throw new Error(`connection failed: ${secret}`);
    });
    app.get('/api/boom', async () => {
      throw Object.assign(new TypeError(`cannot read ${secret}`), { code: 'E_INTERNAL' });
    });
    app.get('/boom-sync', () => {
      throw new RangeError(secret);
    });
    await app.ready();
    try {
      for (const url of ['/boom', '/boom-sync']) {
        const res = await app.inject({ method: 'GET', url });
        assert.equal(res.statusCode, 500);
        assert.match(String(res.headers['content-type']), /^text\/html/);
        assert.match(res.body, /Something went wrong on our side/);
        assert.doesNotMatch(res.body, /hunter2|db\.internal|Error|\.ts:\d+|at \w/);
        // The security headers are there on error pages too.
        assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
      }
      const api = await app.inject({ method: 'GET', url: '/api/boom' });
      assert.equal(api.statusCode, 500);
      assert.deepEqual(api.json(), { error: 'Something went wrong on our side. It has been logged.' });
      // ...while the log keeps what an operator needs.
      assert.ok(logged.some((line) => line.includes('hunter2') && line.includes('"stack"')));
    } finally {
      await app.close();
      await database.close();
    }
  });
});

describe('cookies with an https PUBLIC_URL', () => {
  let secure: TestApp;
  before(async () => {
    secure = await startTestApp({ PUBLIC_URL: 'https://chat.example.com' }, t.database);
  });
  after(() => secure.close());

  test('every cookie is Secure, __Host- prefixed, Path=/ and has no Domain; HSTS is on', async () => {
    const c = new TestClient(secure.app);
    const page = await c.get('/register');
    assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/);
    assert.match(String(page.headers['content-security-policy']), /upgrade-insecure-requests/);
    const res = await c.post(
      '/register',
      { username: 'Sec', email: 'secure@example.com', password: 'correct horse battery staple' },
      { origin: 'https://chat.example.com' },
    );
    assert.equal(res.statusCode, 303, res.body.slice(0, 300));
    const cookies = [...page.cookies, ...res.cookies] as Array<{
      name: string;
      secure?: boolean;
      path?: string;
      domain?: string;
      httpOnly?: boolean;
      sameSite?: string;
    }>;
    assert.deepEqual([...new Set(cookies.map((x) => x.name))].sort(), ['__Host-parley_csrf', '__Host-parley_flash', '__Host-parley_session']);
    for (const cookie of cookies) {
      assert.equal(cookie.secure, true, cookie.name);
      assert.equal(cookie.path, '/', cookie.name);
      assert.equal(cookie.domain, undefined, cookie.name);
      assert.equal(cookie.httpOnly, true, cookie.name);
      assert.equal(cookie.sameSite, 'Lax', cookie.name);
    }
    assert.equal((await c.get('/chat')).statusCode, 200);
  });

  test('a POST from the http origin (or another one) is refused when PUBLIC_URL is https', async () => {
    const c = new TestClient(secure.app);
    await c.get('/login');
    const res = await c.post('/login', { email: 'secure@example.com', password: 'correct horse battery staple' }, { origin: 'http://chat.example.com' });
    assert.equal(res.statusCode, 403);
  });

  test('with plain http there is no Secure flag and no prefix', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/login' });
    const csrf = (res.cookies as Array<{ name: string; secure?: boolean }>).find((x) => x.name === 'parley_csrf');
    assert.ok(csrf);
    assert.notEqual(csrf.secure, true);
  });
});
