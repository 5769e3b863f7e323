import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { TOTP_STEP_S, totpCodeAt } from '../src/auth/totp.ts';
import { THINKING_PLACEHOLDER } from '../src/chat/chat-queries.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { testDbKind } from './database.ts';
import { type Answer, HttpBrowser, PASSWORD, redirectOf } from './multi-process-client.ts';
import { type Place, placeForServer, readSse, type ServerProcess, spawnServer } from './server-process.ts';

// Two real `node src/server.ts` processes, A and B, on one PostgreSQL database with one APP_SECRET, and nothing
// else between them: every request below may go to either, as behind a load balancer without sticky sessions.
// What one process does must hold on the other from its very next request, because the shared state (sessions,
// roles, throttles, stop requests, answers being written) lives in the database and nowhere else.

const skip = testDbKind === 'pglite' ? 'several processes need PostgreSQL: PGlite is single-process by design (its DATA_DIR is locked)' : false;

const POOL_SIZE = 4;
const SECRET = 'multi-process-secret-that-is-long-enough-0123456789';
let llm: FakeLlm;
let place: Place;
let database: OpenedDatabase;
let A: string;
let B: string;
let serverA: ServerProcess;
let serverB: ServerProcess;

let ipCounter = 0;
/** Each browser is a client address of its own (X-Forwarded-For, TRUST_PROXY=true): per-address limits stay out of the way. */
const newBrowser = () => {
  ipCounter += 1;
  return new HttpBrowser(`10.77.${Math.floor(ipCounter / 250)}.${(ipCounter % 250) + 1}`);
};

before(async () => {
  if (skip) return;
  llm = await startFakeLlm();
  // Left empty: both processes start at once and run the migrations and the model bootstrap against each other.
  place = await placeForServer({ migrate: false });
  const env = {
    ...place.env,
    APP_SECRET: SECRET,
    TRUST_PROXY: 'true',
    OPENAI_BASE_URL: llm.baseUrl,
    OPENAI_MODELS: 'fake-echo',
    SHUTDOWN_GRACE_S: '1',
    DB_POOL_SIZE: String(POOL_SIZE),
    LOG_LEVEL: 'warn',
  };
  // Each process's connections carry its name (pg_stat_activity.application_name), so they can be counted apart.
  const named = (name: string) => {
    const url = new URL(place.env.DATABASE_URL ?? '');
    url.searchParams.set('application_name', name);
    return { ...env, DATABASE_URL: url.toString() };
  };
  const started = await Promise.allSettled([spawnServer(named('parley-A')), spawnServer(named('parley-B'))]);
  const [a, b] = started;
  if (a.status === 'rejected' || b.status === 'rejected') {
    for (const s of started) if (s.status === 'fulfilled') s.value.child.kill('SIGKILL');
    throw a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason;
  }
  serverA = a.value;
  serverB = b.value;
  A = serverA.baseUrl;
  B = serverB.baseUrl;
  database = await place.open();
});

after(async () => {
  if (skip) return;
  for (const s of [serverA, serverB]) if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  await Promise.all([serverA?.exited, serverB?.exited]);
  await place?.cleanUp();
  await llm?.close();
});

/** Polls `probe` every `everyMs` until it returns a value. */
async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(everyMs)) {
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error(`condition not reached within ${timeoutMs} ms`);
}

const userIdOf = async (email: string) =>
  (await database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', email).executeTakeFirstOrThrow()).idappuser;

const signedOut = (a: Answer) => redirectOf(a)?.startsWith('/login') === true;

/** Signed in on one process; its next page on the other must be a normal page. */
async function assertSignedInOn(base: string, b: HttpBrowser): Promise<void> {
  const page = await b.get(base, '/chat');
  assert.equal(page.status, 200, `expected the chat page, got ${page.status} ${redirectOf(page) ?? ''}`);
}

async function signInFresh(base: string, email: string): Promise<HttpBrowser> {
  const b = newBrowser();
  const res = await b.login(base, email);
  assert.equal(redirectOf(res), '/chat', `sign-in answered ${res.status}`);
  await b.get(base, '/chat');
  return b;
}

interface Racer {
  email: string;
  browser: HttpBrowser;
  server: string;
}
let racers: Racer[] = [];
let adminEmail = '';
/** The i-th racer that is not the Admin (each test below takes racers of its own). */
const racer = (i: number): Racer => {
  const r = racers.filter((x) => x.email !== adminEmail)[i];
  assert.ok(r, `racer ${i}`);
  return r;
};
const admin = () => {
  const r = racers.find((x) => x.email === adminEmail);
  assert.ok(r, 'the admin');
  return r;
};

const RACERS = 24;

test(`the first-user race across both processes: ${RACERS} registrations at once, half on A and half on B, make exactly one Admin`, { skip }, async () => {
  const models = await database.db.selectFrom('chatbot_schema.llm').select('txmodel').execute();
  assert.deepEqual(
    models.map((m) => m.txmodel),
    ['fake-echo'],
    'two processes starting together on an empty database bootstrapped the model once',
  );

  racers = Array.from({ length: RACERS }, (_, i) => ({ email: `racer-${i}@example.com`, browser: newBrowser(), server: i % 2 === 0 ? A : B }));
  await Promise.all(racers.map((r) => r.browser.get(r.server, '/register')));
  const answers = await Promise.all(
    racers.map((r) => r.browser.post(r.server, '/register', { username: r.email.split('@')[0] ?? 'racer', email: r.email, password: PASSWORD })),
  );
  assert.deepEqual(
    answers.map((a) => redirectOf(a)),
    Array(RACERS).fill('/chat'),
  );
  const admins = await sql<{ txemail: string; idappuser: number }>`
    SELECT u.txemail, u.idappuser FROM chatbot_schema.user_role r JOIN chatbot_schema.app_user u USING (idappuser) WHERE r.idrole = 1`.execute(database.db);
  const users = await sql<{ n: number; first: number }>`SELECT count(*)::int AS n, min(idappuser) AS first FROM chatbot_schema.app_user`.execute(database.db);
  console.log(`# first-user race: ${RACERS} racers (${RACERS / 2} on A, ${RACERS / 2} on B) → ${users.rows[0]?.n} accounts, ${admins.rows.length} Admin`);
  assert.equal(users.rows[0]?.n, RACERS);
  assert.equal(admins.rows.length, 1);
  assert.equal(admins.rows[0]?.idappuser, users.rows[0]?.first, 'the Admin is the first account');
  adminEmail = admins.rows[0]?.txemail ?? '';
  // Each racer now holds a session cookie and, from its chat page, that session's CSRF token.
  await Promise.all(racers.map((r) => r.browser.get(r.server, '/chat')));
});

test('a session made on A works on B: pages, and a JSON write with the CSRF token A handed out', { skip }, async () => {
  const r = [0, 1].map(racer).find((x) => x.server === A);
  assert.ok(r);
  const page = await r.browser.get(B, '/chat');
  assert.equal(page.status, 200);
  assert.ok(page.body.includes(`data-testid="current-user">${r.email.split('@')[0]}<`), 'B knows who this is');
  const modelId = Number(/<option value="(\d+)"/.exec(page.body)?.[1]);
  r.browser.csrf = ''; // the token from A's page, not the one B's page just gave
  await r.browser.get(A, '/chat');
  const created = await r.browser.sendJson(B, 'POST', '/api/chats', { llm: modelId });
  assert.equal(created.status, 201, await created.clone().text());
  const { id } = (await created.json()) as { id: number };
  const read = await r.browser.getJson<{ id: number }>(A, `/api/chats/${id}`);
  assert.equal(read.status, 200);
  assert.equal(read.json.id, id);
});

test('sign-out on A: the same cookie is refused on B at its very next request', { skip }, async () => {
  const r = racer(14);
  const other = r.server === A ? B : A;
  await assertSignedInOn(other, r.browser);
  const stolen = r.browser.clone();
  const out = await r.browser.post(r.server, '/logout');
  assert.equal(redirectOf(out), '/login');
  assert.ok(signedOut(await stolen.get(other, '/chat')), 'the page sends the old cookie to /login');
  assert.equal((await stolen.getJson(other, '/api/chats/1')).status, 401);
});

test('deactivation by an admin on A: the user is signed out on B at its very next request', { skip }, async () => {
  const target = racer(2);
  await assertSignedInOn(B, target.browser);
  const res = await admin().browser.post(A, `/admin/users/${await userIdOf(target.email)}/deactivate`);
  assert.equal(res.status, 303, res.body);
  assert.ok(signedOut(await target.browser.get(B, '/chat')));
  assert.equal((await target.browser.getJson(B, '/api/chats/1')).status, 401);
});

test('demotion on A: the admin pages answer 403 on B at the very next request', { skip }, async () => {
  const target = racer(3);
  const id = await userIdOf(target.email);
  assert.equal((await admin().browser.post(A, `/admin/users/${id}/promote`)).status, 303);
  assert.equal((await target.browser.get(B, '/admin/users')).status, 200, 'promoted on A, an admin on B');
  assert.equal((await admin().browser.post(A, `/admin/users/${id}/demote`)).status, 303);
  assert.equal((await target.browser.get(B, '/admin/users')).status, 403);
  assert.equal((await target.browser.get(B, '/chat')).status, 200, 'still signed in, as a user');
});

/** A code of the secret other than those of the current step and its neighbours: surely wrong. */
function wrongCode(secret: string): string {
  const near = [-1, 0, 1].map((k) => totpCodeAt(secret, Date.now() + k * TOTP_STEP_S * 1000));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!near.includes(code)) return code;
  }
}

/** 2FA turned on for `b`'s account through its settings page on `base`: the secret and the recovery codes. */
async function enrol(base: string, b: HttpBrowser): Promise<{ secret: string; codes: string[] }> {
  await b.get(base, '/settings/2fa');
  assert.equal((await b.post(base, '/settings/2fa', { action: 'generate' })).status, 303);
  const page = await b.get(base, '/settings/2fa');
  const secret = (/data-testid="totp-secret">([A-Z2-7 ]+)</.exec(page.body)?.[1] ?? '').replace(/ /g, '');
  assert.ok(secret, 'the enrolment page shows the secret');
  const confirmed = await b.post(base, '/settings/2fa', { action: 'confirm', otp_code: totpCodeAt(secret, Date.now()) });
  assert.equal(confirmed.status, 200, confirmed.body);
  const codes = (/data-testid="recovery-codes">([^<]*)</.exec(confirmed.body)?.[1] ?? '').trim().split('\n');
  return { secret, codes };
}

test('2FA disabled on A: its other session, signed in with a code on B, is signed out on B at its very next request', { skip }, async () => {
  const owner = racer(4);
  const { secret, codes } = await enrol(A, owner.browser);
  const second = newBrowser();
  assert.equal(redirectOf(await second.login(B, owner.email)), '/login/2fa');
  await second.get(B, '/login/2fa');
  // The confirmation used the current step; a code is accepted once, so the next step's code (within the drift).
  const passed = await second.post(B, '/login/2fa', { otp_code: totpCodeAt(secret, Date.now() + TOTP_STEP_S * 1000) });
  assert.equal(redirectOf(passed), '/chat', `second step answered ${passed.status}`);
  await assertSignedInOn(B, second);
  await owner.browser.get(A, '/settings/2fa');
  const off = await owner.browser.post(A, '/settings/2fa', { action: 'disable', otp_code: codes[0] ?? '' });
  assert.equal(off.status, 303, off.body);
  assert.ok(signedOut(await second.get(B, '/chat')));
  await assertSignedInOn(B, owner.browser); // the session that turned it off stays
});

test('a session revoked on A (Settings → Sessions) is signed out on B at its very next request', { skip }, async () => {
  const owner = racer(5);
  const second = await signInFresh(B, owner.email);
  await assertSignedInOn(B, second);
  const settings = await owner.browser.get(A, '/settings');
  const other = /name="session" value="([0-9a-f]{64})"/.exec(settings.body)?.[1];
  assert.ok(other, 'the settings page lists the other session with a Revoke button');
  assert.equal((await owner.browser.post(A, '/settings/sessions/revoke', { session: other })).status, 303);
  assert.ok(signedOut(await second.get(B, '/chat')));
  await assertSignedInOn(B, owner.browser);
});

test("a session an admin revokes on A (the user's page) is signed out on B at its very next request", { skip }, async () => {
  const target = racer(15);
  await assertSignedInOn(B, target.browser);
  const id = await userIdOf(target.email);
  const page = await admin().browser.get(A, `/admin/users/${id}`);
  const session = /name="session" value="([0-9a-f]{64})"/.exec(page.body)?.[1];
  assert.ok(session, "the user's page lists the session");
  assert.equal((await admin().browser.post(A, `/admin/users/${id}/sessions/revoke`, { session })).status, 303);
  assert.ok(signedOut(await target.browser.get(B, '/chat')));
});

test('the password throttle counts across both: wrong passwords alternating A, B, A… lock at the 11th, as on one process', { skip }, async () => {
  const email = racer(6).email;
  const guesser = newBrowser();
  await guesser.get(A, '/login'); // one anonymous CSRF token, good on both (same APP_SECRET)
  const statuses: number[] = [];
  for (let i = 0; i < 11; i++) statuses.push((await guesser.post(i % 2 === 0 ? A : B, '/login', { email, password: `wrong ${i}` })).status);
  console.log(`# password throttle, sequential: ${statuses.join(' ')}`);
  assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
  assert.equal((await guesser.post(B, '/login', { email, password: PASSWORD })).status, 429, 'the right password is locked out too');
});

test('the password throttle under a burst across both: 30 wrong passwords at once, 15 on A and 15 on B, get 10 verified', { skip }, async () => {
  const email = racer(7).email;
  const guessers = Array.from({ length: 30 }, () => newBrowser());
  await Promise.all(guessers.map((g, i) => g.get(i % 2 === 0 ? A : B, '/login')));
  let bursting = true;
  const peak = { 'parley-A': 0, 'parley-B': 0 };
  const sampling = (async () => {
    while (bursting) {
      const rows = await sql<{ name: keyof typeof peak; n: number }>`
        SELECT application_name AS name, count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name IN ('parley-A', 'parley-B') GROUP BY 1`.execute(database.db);
      for (const r of rows.rows) peak[r.name] = Math.max(peak[r.name], r.n);
      await sleep(10);
    }
  })();
  const answers = await Promise.all(guessers.map((g, i) => g.post(i % 2 === 0 ? A : B, '/login', { email, password: `burst ${i}` })));
  bursting = false;
  await sampling;
  const count = (s: number) => answers.filter((a) => a.status === s).length;
  console.log(`# password throttle, burst of 30 over A+B: ${count(401)} × 401, ${count(429)} × 429`);
  console.log(`# connections to PostgreSQL at the peak of the burst, DB_POOL_SIZE=${POOL_SIZE}: A ${peak['parley-A']}, B ${peak['parley-B']}`);
  // The pool, and the one connection of its own that holds the instance lock (src/db/instance-lock.ts).
  for (const n of Object.values(peak)) assert.ok(n >= 2 && n <= POOL_SIZE + 1, `${n} connections`);
  assert.equal(count(401), 10);
  assert.equal(count(429), 20);
  assert.equal((await guessers[0]?.post(A, '/login', { email, password: PASSWORD }))?.status, 429);
});

test('the second-step throttle counts across both: 12 wrong codes at once from two pending sign-ins (on A and on B) get 5 checked', { skip }, async () => {
  const owner = racer(8);
  const { secret } = await enrol(A, owner.browser);
  const pending = [newBrowser(), newBrowser()];
  const servers = [A, B];
  for (const [i, p] of pending.entries()) {
    assert.equal(redirectOf(await p.login(servers[i] ?? A, owner.email)), '/login/2fa');
    await p.get(servers[i] ?? A, '/login/2fa');
  }
  const wrong = wrongCode(secret);
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => pending[i % 2]?.post(servers[i % 2] ?? A, '/login/2fa', { otp_code: wrong })));
  const count = (s: number) => answers.filter((a) => a?.status === s).length;
  console.log(`# second-step throttle, burst of 12 over A+B: ${count(401)} × 401, ${count(429)} × 429`);
  assert.equal(count(401), 5);
  assert.equal(count(429), 7);
  const right = await pending[1]?.post(B, '/login/2fa', { otp_code: totpCodeAt(secret, Date.now() + TOTP_STEP_S * 1000) });
  assert.equal(right?.status, 429, 'the right code is locked out too');
});

/** A chat of `b`'s with the bootstrapped model, made on `base`, and `prompt` sent there: the stream and its events. */
async function ask(base: string, b: HttpBrowser, prompt: string) {
  const model = await database.db.selectFrom('chatbot_schema.llm').select('idllm').executeTakeFirstOrThrow();
  const created = await b.sendJson(base, 'POST', '/api/chats', { llm: model.idllm });
  assert.equal(created.status, 201);
  const { id: chatId } = (await created.json()) as { id: number };
  const res = await b.sendJson(base, 'POST', `/api/chats/${chatId}/messages`, { content: prompt });
  assert.equal(res.status, 200);
  let firstToken: () => void = () => {};
  const tokenSeen = new Promise<void>((resolve) => {
    firstToken = resolve;
  });
  const events = readSse(res, (e) => e === 'token' && firstToken());
  const done = events.then((all) => ({
    events: all,
    text: all
      .filter((e) => e.event === 'token')
      .map((e) => (e.data as { text: string }).text)
      .join(''),
    responseId: (all.find((e) => e.event === 'start')?.data as { idresponse?: number } | undefined)?.idresponse,
  }));
  return { chatId, tokenSeen, done };
}

interface ChatJson {
  turns: Array<{ response: { idresponse: number; status: string; markdown: string | null } | null }>;
}
const words = (text: string | null | undefined) => (text ?? '').split(/\s+/).filter(Boolean).length;

test('an answer streaming on A is read from B while it streams (the text grows), and complete on B after', { skip }, async () => {
  const r = racer(9);
  const answer = await ask(A, r.browser, 'stream me [[slow:40]] [[long:150]]');
  const seen: Array<{ status: string; markdown: string }> = [];
  let pageShowedPartial = false;
  const final = await until(
    async () => {
      const { json } = await r.browser.getJson<ChatJson>(B, `/api/chats/${answer.chatId}`);
      const resp = json.turns.at(-1)?.response;
      if (!resp) return undefined;
      // Before its first flush an answer holds the seed's "🧠 Thinking..." placeholder (the page shows it as typing).
      seen.push({ status: resp.status, markdown: resp.markdown === THINKING_PLACEHOLDER ? '' : (resp.markdown ?? '') });
      if (resp.status === 'streaming' && resp.markdown && !pageShowedPartial) {
        const page = await r.browser.get(B, `/chat/${answer.chatId}`);
        pageShowedPartial = page.status === 200 && page.body.includes('lorem ipsum');
      }
      return resp.status === 'streaming' || resp.status === 'pending' ? undefined : resp;
    },
    30_000,
    250,
  );
  const { text } = await answer.done;
  const partial = [...new Set(seen.filter((s) => s.status === 'streaming' && s.markdown).map((s) => s.markdown.length))];
  console.log(`# streaming on A, read from B: ${seen.length} reads, partial lengths ${partial.join(' → ')}, then ${final.status} (${text.length} chars)`);
  assert.ok(partial.length >= 2, `B saw the text grow while it streamed (${partial.join(', ')})`);
  assert.deepEqual(
    partial,
    [...partial].sort((x, y) => x - y),
    'it only grows',
  );
  for (const s of seen) if (s.status === 'streaming') assert.ok(text.startsWith(s.markdown), 'every partial is a prefix of the answer');
  assert.ok(pageShowedPartial, "B's chat page showed the partial text");
  assert.equal(final.status, 'complete');
  assert.equal(final.markdown, text, 'B reads exactly what A streamed');
  assert.equal(words(text), 150);
});

test('Stop pressed through B stops an answer running on A', { skip }, async () => {
  const r = racer(10);
  const abandonedBefore = llm.abandonedStreams;
  const answer = await ask(A, r.browser, 'a long one [[slow:50]] [[long:400]]');
  await answer.tokenSeen;
  const { json } = await r.browser.getJson<ChatJson>(B, `/api/chats/${answer.chatId}`);
  const responseId = json.turns.at(-1)?.response?.idresponse;
  assert.ok(responseId);
  const stoppedAt = Date.now();
  const stop = await r.browser.sendJson(B, 'POST', `/api/chats/${answer.chatId}/responses/${responseId}/stop`, {});
  assert.equal(stop.status, 200, await stop.clone().text());
  const { events, text } = await answer.done;
  const tookMs = Date.now() - stoppedAt;
  const row = await database.db
    .selectFrom('chatbot_schema.response')
    .select(['txstatus', 'txmarkdown'])
    .where('idresponse', '=', responseId)
    .executeTakeFirstOrThrow();
  console.log(`# stop on B → A's stream ended ${tookMs} ms later, ${words(text)} of 400 words`);
  assert.equal(events.at(-1)?.event, 'done');
  assert.equal((events.at(-1)?.data as { status?: string } | undefined)?.status, 'stopped');
  assert.ok(tookMs < 5_000, `stopped ${tookMs} ms after the request`);
  assert.equal(row.txstatus, 'stopped');
  assert.equal(row.txmarkdown, text);
  assert.ok(words(text) < 400, 'cut short');
  await until(async () => (llm.abandonedStreams > abandonedBefore ? true : undefined), 5_000);
});

test('A killed (SIGKILL) mid-answer: its answer is `interrupted` within seconds, while the answers on B go on and complete', { skip }, async () => {
  const onA = await ask(A, racer(11).browser, 'on A [[slow:50]] [[long:400]]');
  const onB = await Promise.all([12, 13].map((i) => ask(B, racer(i).browser, 'on B [[slow:50]] [[long:260]]')));
  await Promise.all([onA.tokenSeen, ...onB.map((x) => x.tokenSeen)]);
  const responseOf = async (chatId: number) =>
    database.db
      .selectFrom('chatbot_schema.response')
      .select(['idresponse', 'txstatus', 'txmarkdown', 'txerror'])
      .where('idchat', '=', chatId)
      .executeTakeFirstOrThrow();
  // Some of A's answer is stored before the kill (flushes run every second).
  await until(async () => ((await responseOf(onA.chatId)).txmarkdown?.includes('lorem') ? true : undefined), 10_000);

  serverA.child.kill('SIGKILL');
  await serverA.exited;
  const killedAt = Date.now();
  const interrupted = await until(
    async () => {
      const row = await responseOf(onA.chatId);
      return row.txstatus === 'interrupted' ? row : undefined;
    },
    40_000,
    100,
  );
  const tookMs = Date.now() - killedAt;
  const bWhenSwept = await Promise.all(onB.map((x) => responseOf(x.chatId)));

  const finished = await Promise.all(onB.map((x) => x.done));
  const bRows = await Promise.all(onB.map((x) => responseOf(x.chatId)));
  console.log(
    `# A killed: its answer interrupted ${(tookMs / 1000).toFixed(1)} s later (${words(interrupted.txmarkdown)} words kept); B's answers then ${bWhenSwept.map((r) => r.txstatus).join(', ')}, finally ${bRows.map((r) => `${r.txstatus} ${words(r.txmarkdown)} words`).join(', ')}`,
  );
  assert.ok(tookMs < 10_000, `interrupted ${tookMs} ms after the kill`);
  assert.match(interrupted.txerror ?? '', /restarted/);
  assert.match(interrupted.txmarkdown ?? '', /lorem/, 'the partial text is kept');
  assert.notEqual((await onA.done).events.at(-1)?.event, 'done', "A's stream was cut");
  for (const r of bWhenSwept) assert.equal(r.txstatus, 'streaming', "B's answers were still running when A's was swept, and were left alone");
  for (const [i, f] of finished.entries()) {
    assert.equal(f.events.at(-1)?.event, 'done');
    assert.equal(bRows[i]?.txstatus, 'complete');
    assert.equal(bRows[i]?.txmarkdown, f.text);
    assert.equal(words(f.text), 260);
  }
  assert.equal((await fetch(`${B}/readyz`)).status, 200, 'B is still ready');
});
