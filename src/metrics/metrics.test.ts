import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { startTestApp, type TestApp, testConfig } from '../../test/app.ts';
import { addModel, newChat, parseSse, waitFor } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { openTestDatabase, testDbKind } from '../../test/database.ts';
import { enrolThroughSettings } from '../../test/totp-helpers.ts';
import { buildApp } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { type FakeLlm, startFakeLlm } from '../llm/fake-llm-server.ts';

const TOKEN = 'metrics-token-0123456789abcdef';
/** Admin-written text: the exposition format must escape the quote and the backslash. */
const MODEL_NAME = 'Fake "echo" \\ one';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (label values unescaped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample with this name whose labels include `labels`; undefined when there is none. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

/** An app without METRICS_TOKEN (most apps, and every other test file's). */
let off: TestApp;
before(async () => {
  off = await startTestApp();
});
after(() => off.close());

describe('GET /metrics without METRICS_TOKEN', () => {
  test('does not exist: 404 as for any unknown path, with or without a token', async () => {
    assert.equal((await off.app.inject({ url: '/metrics' })).statusCode, 404);
    assert.equal((await off.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 404);
  });

  test('METRICS_TOKEN must be a bearer token of 16 characters or more', () => {
    assert.throws(
      () => testConfig({ METRICS_TOKEN: 'short' }),
      (err: Error) => err instanceof ConfigError && /^METRICS_TOKEN: /.test(err.message),
    );
    assert.throws(() => testConfig({ METRICS_TOKEN: 'has spaces in it, sixteen+' }), ConfigError);
    assert.equal(loadConfig({ APP_SECRET: 'x'.repeat(32), DATA_DIR: testConfig().DATA_DIR, METRICS_TOKEN: TOKEN }).METRICS_TOKEN, TOKEN);
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  let database: OpenedDatabase;
  let app: FastifyInstance;
  let llm: FakeLlm;
  let user: TestClient;
  let modelId: number;
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    llm = await startFakeLlm();
    database = await openTestDatabase();
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    // Google configured (its issuer is never reached: the refusal counted below comes before any request to it).
    const google = { GOOGLE_CLIENT_ID: 'client', GOOGLE_CLIENT_SECRET: 'secret', GOOGLE_ISSUER: 'http://127.0.0.1:9/' };
    app = await buildApp({ config: testConfig({ METRICS_TOKEN: TOKEN, ...google }), db: database.db, logger: { level: 'info', stream } });
    await app.ready();
    modelId = await addModel(database, llm.baseUrl, MODEL_NAME);
    user = new TestClient(app);
    await user.register({ username: 'Ada', email: 'ada@example.com' });
    await user.get('/chat');
  });
  after(async () => {
    await app.close();
    await database.close();
    await llm.close();
  });

  const scrape = (headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => app.inject({ url: '/metrics', headers });
  const samples = async () => {
    const res = await scrape();
    assert.equal(res.statusCode, 200, res.body);
    return parseExposition(res.body);
  };

  test('a missing or wrong token gets 401 with a Bearer challenge, and no metrics', async () => {
    const missing = await scrape({});
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="metrics"');
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      'Bearer wrong',
      `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`,
      TOKEN,
    ]) {
      const res = await scrape({ authorization });
      assert.equal(res.statusCode, 401, authorization);
      assert.match(String(res.headers['www-authenticate']), /^Bearer realm="metrics"/);
      assert.doesNotMatch(res.body, /parley_/);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
    assert.match(String((await scrape({ authorization: 'Bearer wrong' })).headers['www-authenticate']), /error="invalid_token"/);
  });

  test('the right token gets the Prometheus text format (version 0.0.4), never cached, no cookie, no log line', async () => {
    logLines.length = 0;
    const res = await scrape({ authorization: `bearer ${TOKEN}` }); // the scheme is case-insensitive (RFC 7235)
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['set-cookie'], undefined);
    assert.deepEqual(
      logLines.filter((l) => l.url === '/metrics'),
      [],
    );
    const all = parseExposition(res.body);
    // prom-client's default process metrics come along.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(sampleValue(all, name) !== undefined, name);
    }
    // Another request still gets its log line (only scrapes are left out).
    await app.inject({ url: '/login' });
    assert.ok(logLines.some((l) => l.url === '/login'));
  });

  test('the database pool gauges are read at each scrape', async () => {
    const all = await samples();
    const max = testDbKind === 'pglite' ? 1 : 10;
    assert.equal(sampleValue(all, 'parley_db_pool_max_connections'), max);
    const inUse = sampleValue(all, 'parley_db_pool_connections', { state: 'in_use' });
    const idle = sampleValue(all, 'parley_db_pool_connections', { state: 'idle' });
    assert.ok(inUse !== undefined && idle !== undefined);
    // pg closes connections idle for 10 s, so an idle pool may hold none at all.
    assert.ok(inUse >= 0 && idle >= 0 && inUse + idle <= max, `${inUse} + ${idle}`);
    assert.equal(sampleValue(all, 'parley_db_pool_waiting'), 0);
    // A transaction holds a connection: it shows as in use while it lasts (at least it: on PostgreSQL the sweep for
    // answers of dead processes may hold another one for a moment).
    await database.db.transaction().execute(async (trx) => {
      await sql`SELECT 1`.execute(trx);
      const during = await samples();
      const held = sampleValue(during, 'parley_db_pool_connections', { state: 'in_use' }) ?? 0;
      assert.ok(held >= 1 && held <= max, `in use: ${held}`);
    });
  });

  test('requests are counted by route pattern and status, never by raw URL', async () => {
    const chatId = await newChat(user, modelId);
    assert.equal((await user.get(`/chat/${chatId}`)).statusCode, 200);
    assert.equal((await user.get('/chat/999999')).statusCode, 404);
    assert.equal((await app.inject({ url: '/no/such/page/4711' })).statusCode, 404);
    const res = await scrape();
    const all = parseExposition(res.body);
    assert.equal(sampleValue(all, 'parley_http_requests_total', { method: 'GET', route: '/chat/:id', status: '200' }), 1);
    assert.equal(sampleValue(all, 'parley_http_requests_total', { method: 'GET', route: '/chat/:id', status: '404' }), 1);
    assert.equal(sampleValue(all, 'parley_http_requests_total', { method: 'POST', route: '/api/chats', status: '201' }), 1);
    assert.equal(sampleValue(all, 'parley_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.equal(sampleValue(all, 'parley_http_request_duration_seconds_count', { method: 'GET', route: '/chat/:id' }), 2);
    const routes = new Set(all.filter((s) => s.name === 'parley_http_requests_total').map((s) => s.labels.route));
    for (const route of routes) assert.ok(route === 'unmatched' || !/\/\d+(\/|$)|4711/.test(route ?? ''), `route label ${route}`);
  });

  test('a wrong password and a locked account are counted: sign-in failures by method, throttle hits by kind', async () => {
    const before = await samples();
    assert.equal(sampleValue(before, 'parley_sign_in_failures_total', { method: 'password' }), 0); // known labels start at 0
    assert.equal(sampleValue(before, 'parley_throttle_hits_total', { kind: 'password_account' }), 0);
    const c = new TestClient(app);
    assert.equal((await c.login('ada@example.com', 'not the password')).statusCode, 401);
    // The account's throttle locked (as ten failures would leave it): the next attempt is refused before argon2.
    await sql`
      INSERT INTO chatbot_schema.login_throttle (txkey, nfailures, dtwindow_start, dtlocked_until)
      VALUES ('pw:locked@example.com', 10, now(), now() + interval '15 minutes')`.execute(database.db);
    assert.equal((await c.login('locked@example.com', 'anything')).statusCode, 429);
    const after = await samples();
    assert.equal(sampleValue(after, 'parley_sign_in_failures_total', { method: 'password' }), 1);
    assert.equal(sampleValue(after, 'parley_throttle_hits_total', { kind: 'password_account' }), 1);
    assert.equal(sampleValue(after, 'parley_throttle_hits_total', { kind: 'password_address' }), 0);
    assert.equal(sampleValue(after, 'parley_http_requests_total', { method: 'POST', route: '/login', status: '429' }), 1);
  });

  test("Settings' password change counts its throttle hits too (a stolen session guessing the password)", async () => {
    const c = new TestClient(app);
    await c.register({ email: 'settings-pw@example.com' });
    const before = sampleValue(await samples(), 'parley_throttle_hits_total', { kind: 'password_account' }) ?? 0;
    await sql`
      INSERT INTO chatbot_schema.login_throttle (txkey, nfailures, dtwindow_start, dtlocked_until)
      VALUES ('pw:settings-pw@example.com', 10, now(), now() + interval '15 minutes')`.execute(database.db);
    await c.get('/settings'); // its form's CSRF token
    const res = await c.post('/settings/password', { current_password: 'a guess', new_password: 'another long passphrase 42' });
    assert.equal(res.statusCode, 429);
    assert.equal(sampleValue(await samples(), 'parley_throttle_hits_total', { kind: 'password_account' }), before + 1);
  });

  test('wrong second-step codes count as totp or recovery failures; the sixth hits the second_factor throttle', async () => {
    const c = new TestClient(app);
    await c.register({ email: 'tf@example.com' });
    await enrolThroughSettings(c);
    await c.post('/logout');
    await c.login('tf@example.com');
    await c.get('/login/2fa');
    for (const otp_code of ['000000', '000001', '000002', 'not-a-recovery-code', 'also-not-one']) {
      assert.equal((await c.post('/login/2fa', { otp_code })).statusCode, 401, otp_code);
    }
    assert.equal((await c.post('/login/2fa', { otp_code: '000003' })).statusCode, 429); // 5 failures locked the step
    const all = await samples();
    assert.equal(sampleValue(all, 'parley_sign_in_failures_total', { method: 'totp' }), 3);
    assert.equal(sampleValue(all, 'parley_sign_in_failures_total', { method: 'recovery' }), 2);
    assert.equal(sampleValue(all, 'parley_throttle_hits_total', { kind: 'second_factor' }), 1);
  });

  test('a refused Google sign-in counts as a google failure', async () => {
    const res = await app.inject({ url: '/login/google/authorized?code=abc' }); // no state: refused before the provider
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login');
    assert.equal(sampleValue(await samples(), 'parley_sign_in_failures_total', { method: 'google' }), 1);
  });

  test('a streamed answer: in flight while it streams, then counted by model and status with its two times', async () => {
    const model = { model: MODEL_NAME };
    const chatId = await newChat(user, modelId);
    const streaming = user.postJson(`/api/chats/${chatId}/messages`, { content: 'count slowly [[slow:40]]' });
    const during = await waitFor(async () => {
      const all = await samples();
      return sampleValue(all, 'parley_answers_in_flight') === 1 ? all : undefined;
    }, 30_000);
    assert.equal(sampleValue(during, 'parley_answers_total', { ...model, status: 'complete' }), undefined);
    const done = parseSse((await streaming).body).at(-1);
    assert.equal(done?.event, 'done');

    const failedChat = await newChat(user, modelId);
    const failed = parseSse((await user.postJson(`/api/chats/${failedChat}/messages`, { content: 'oops [[fail]]' })).body).at(-1);
    assert.equal(failed?.event, 'error');

    const res = await scrape();
    // The admin-written name, escaped by prom-client and read back intact.
    assert.ok(res.body.includes('model="Fake \\"echo\\" \\\\ one"'), 'the model label is escaped');
    const all = parseExposition(res.body);
    assert.equal(sampleValue(all, 'parley_answers_in_flight'), 0);
    assert.equal(sampleValue(all, 'parley_answers_total', { ...model, status: 'complete' }), 1);
    assert.equal(sampleValue(all, 'parley_answers_total', { ...model, status: 'error' }), 1);
    assert.equal(sampleValue(all, 'parley_answer_time_to_first_token_seconds_count', model), 1);
    assert.equal(sampleValue(all, 'parley_answer_inference_seconds_count', model), 1); // complete answers only
    const ttft = sampleValue(all, 'parley_answer_time_to_first_token_seconds_sum', model) ?? 0;
    const inference = sampleValue(all, 'parley_answer_inference_seconds_sum', model) ?? 0;
    // [[slow:40]] sleeps 40 ms before each of its 37 chunks, so the whole answer takes longer than its first token.
    assert.ok(ttft > 0 && inference > ttft + 0.3, `ttft ${ttft} s, inference ${inference} s`);
    assert.equal(sampleValue(all, 'parley_answer_inference_seconds_bucket', { ...model, le: '+Inf' }), 1);
    assert.equal(sampleValue(all, 'parley_http_requests_total', { method: 'POST', route: '/api/chats/:id/messages', status: '200' }), 2);
  });

  test('each app counts into a registry of its own (tests build many apps in one process)', async () => {
    const offSamples = parseExposition(await off.app.metrics.registry.metrics());
    assert.deepEqual(
      offSamples.filter((s) => s.name === 'parley_http_requests_total').map((s) => s.labels),
      [{ method: 'GET', route: 'unmatched', status: '404' }], // its own two requests for /metrics, nothing of the app above
    );
    assert.equal(sampleValue(offSamples, 'parley_sign_in_failures_total', { method: 'password' }), 0);
    // Without the token, no process metrics either (their monitors would run for the process's life).
    assert.equal(sampleValue(offSamples, 'process_cpu_user_seconds_total'), undefined);
  });
});
