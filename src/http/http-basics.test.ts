import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, testConfig } from '../../test/app.ts';
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

describe('security headers', () => {
  for (const url of ['/login', '/register', '/does-not-exist']) {
    test(`${url} sends a CSP without inline scripts, frame-ancestors 'none', nosniff and a Referrer-Policy`, async () => {
      const res = await t.app.inject({ method: 'GET', url });
      const csp = directives(String(res.headers['content-security-policy']));
      const scriptSrc = csp.get('script-src') ?? csp.get('default-src') ?? [];
      assert.ok(scriptSrc.length > 0, 'script-src or default-src is set');
      for (const unsafe of ["'unsafe-inline'", "'unsafe-eval'", '*', 'data:', 'http:', 'https:'])
        assert.ok(!scriptSrc.includes(unsafe), `script-src allows ${unsafe}`);
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
      assert.deepEqual(csp.get('object-src'), ["'none'"]);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['referrer-policy']), /^(same-origin|no-referrer|strict-origin(-when-cross-origin)?)$/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      // Plain http in development: no HSTS (it would pin localhost to https).
      assert.equal(res.headers['strict-transport-security'], undefined);
    });
  }

  test('the page itself has no inline script or event handler for the CSP to block', async () => {
    const res = await new TestClient(t.app).get('/login');
    for (const m of res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1] ?? '', /\bsrc="\/static\//, `script without a same-origin src: ${m[0].slice(0, 80)}`);
      assert.equal(m[2]?.trim(), '');
    }
    assert.doesNotMatch(res.body, /\son[a-z]+="/i);
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
