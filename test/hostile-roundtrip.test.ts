import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { titleFrom } from '../src/chat/chat-queries.ts';
import { sha256Hex } from '../src/crypto/tokens.ts';
import { escapeHtml } from '../src/views/html.ts';
import { parseSse, tokensText } from './chat-fixtures.ts';
import { DEFAULT_PASSWORD } from './client.ts';
import { testDbKind } from './database.ts';
import { headerText, LIMIT_UNITS, typedText } from './hostile-input.ts';
import { Judge, startHostileWorld } from './hostile-world.ts';

/**
 * What is accepted is stored whole: for each place a user's text is kept (a chat title, a display name, a prompt and
 * its answer, a model's name, an account made by registration or by an Admin, a session's browser and address),
 * fast-check sends text a person might type and its edges (any graphemes, every kind of whitespace around it, emoji
 * sequences, combining marks, markup characters, the unstorable ones now and then, lengths on either side of the
 * limit). Properties: an accepted request stored exactly the text the schema promises (trimmed where it trims) and a
 * later GET shows exactly that (JSON equal, HTML with it escaped); text within the limits is accepted; a refused
 * one changed no row (see Judge). fast-check picks the seed and prints it on failure (HOSTILE_SEED, HOSTILE_RUNS).
 */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 30);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);
const options = (runs = RUNS) => ({ numRuns: runs, ...(SEED === undefined ? {} : { seed: SEED }) });

const world = await startHostileWorld({ TRUST_PROXY: 'true' });
after(() => world.close());
const { app, clients, ids, database, config } = world;
const db = database.db;
const judge = new Judge(world);
await judge.start();
const text = typedText(config.MAX_PROMPT_CHARS);

/** What PostgreSQL stores unchanged: no NUL, no lone surrogate. */
const storable = (s: string) => !s.includes('\u0000') && s.isWellFormed();
/** What formString lets through (validation.ts): no control characters and no U+FFFD. */
const formSafe = (s: string) => storable(s) && !/[\u0000-\u001f\u007f\ufffd]/.test(s);
/**
 * What a read gives back of stored text. PGlite decodes each text value with a TextDecoder that keeps its default
 * (ignoreBOM false), so one U+FEFF at the start of a value is dropped on the way out; the row itself holds it
 * (checked in SQL below). Upstream (@electric-sql/pglite's BufferReader); PostgreSQL through pg reads it back.
 */
const readBack = (s: string) => (testDbKind === 'pglite' && s.startsWith('\ufeff') ? s.slice(1) : s);
/** Limits are in code points, as zod counts and as PostgreSQL's VARCHAR(n) does (an emoji is one, not two). */
const chars = (s: string) => [...s].length;
/** Text shown to others (names, model names, titles) refuses bidi controls, which can make one name read as another. */
const noBidi = (s: string) => !/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/.test(s);
/** A display name: at most 50 characters people see (grapheme clusters) and 100 code points (the column); no C1 controls either. */
const graphemes = (s: string) => [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s)].length;
const nameFits = (trimmed: string) => trimmed.length >= 1 && graphemes(trimmed) <= 50 && chars(trimmed) <= 100 && !/[\u0080-\u009f]/.test(trimmed);
/** A form as a browser sends it; lone surrogates percent-encoded byte by byte (URLSearchParams would make them U+FFFD). */
function formBody(fields: Record<string, string>): string {
  if (Object.values(fields).every((v) => v.isWellFormed())) return new URLSearchParams(fields).toString();
  return Object.entries(fields)
    .map(([k, v]) => `${encodeURIComponent(k)}=${v.isWellFormed() ? encodeURIComponent(v) : [...Buffer.from(v)].map((b) => `%${b.toString(16)}`).join('')}`)
    .join('&');
}
let caller = 0;
async function postForm(who: 'anonymous' | 'user' | 'admin', url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const client = clients[who];
  caller++;
  return app.inject({
    method: 'POST',
    url,
    // Each request from an address of its own: many runs must not meet the per-address registration throttle.
    remoteAddress: `10.${(caller >> 16) & 255}.${(caller >> 8) & 255}.${caller & 255}`,
    payload: formBody({ _csrf: client.csrf, ...fields }),
    headers: { cookie: client.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}
const said = (label: string, value: string, res: LightMyRequestResponse) => `${label} ${JSON.stringify(value)} → ${res.statusCode} ${res.body.slice(0, 200)}`;

test('a chat title: accepted within 1–200 characters after trimming, stored trimmed, shown exactly (JSON and page)', async () => {
  await fc.assert(
    fc.asyncProperty(text, async (title) => {
      await judge.begin();
      const sent = await app.inject({
        method: 'PATCH',
        url: `/api/chats/${ids.userChat}`,
        payload: JSON.stringify({ title }),
        headers: { cookie: clients.user.cookieHeader(), 'x-csrf-token': clients.user.csrf, 'content-type': 'application/json' },
      });
      const expected = title.trim();
      const acceptable = storable(title) && noBidi(title) && chars(expected) >= 1 && chars(expected) <= 200;
      assert.equal(sent.statusCode < 400, acceptable, said('title', title, sent));
      if (sent.statusCode < 400) {
        const row = await db.selectFrom('chatbot_schema.chat').select('txtitle').where('idchat', '=', ids.userChat).executeTakeFirstOrThrow();
        assert.equal(row.txtitle, expected);
        const json = (await clients.user.get(`/api/chats/${ids.userChat}`)).json() as { title: string };
        assert.equal(json.title, expected);
        const page = await clients.user.get(`/chat/${ids.userChat}`);
        assert.ok(page.body.includes(escapeHtml(expected)), `the chat page does not show ${JSON.stringify(expected)}`);
      }
      await judge.judge(`PATCH title ${JSON.stringify(title)}`, sent);
    }),
    options(),
  );
});

test('a display name: accepted within 50 characters people see and without bidi controls, stored trimmed, shown exactly in Settings', async () => {
  await fc.assert(
    fc.asyncProperty(text, async (username) => {
      await judge.begin();
      const res = await postForm('user', '/settings/profile', { username });
      const expected = username.trim();
      // Names are trimmed first (a tab or newline around one is whitespace, not a control), then checked.
      const acceptable = formSafe(expected) && noBidi(expected) && nameFits(expected);
      assert.equal(res.statusCode < 400, acceptable, said('name', username, res));
      if (res.statusCode < 400) {
        const row = await db.selectFrom('chatbot_schema.app_user').select('txusername').where('idappuser', '=', ids.user).executeTakeFirstOrThrow();
        assert.equal(row.txusername, expected);
        const page = await clients.user.get('/settings');
        assert.ok(page.body.includes(`value="${escapeHtml(expected)}"`), `Settings do not show ${JSON.stringify(expected)}`);
      }
      await judge.judge(`profile name ${JSON.stringify(username)}`, res);
    }),
    options(),
  );
});

/** The chat holds exactly one message equal to `content`, compared inside the database: the row, not a driver's reading of it. */
async function assertPromptStored(chatId: number, content: string): Promise<void> {
  const stored = await db
    .selectFrom('chatbot_schema.message')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('idchat', '=', chatId)
    .where('txmessage', '=', content)
    .executeTakeFirstOrThrow();
  assert.equal(Number(stored.n), 1, 'the message row is not exactly the prompt');
}

test('a prompt: stored exactly, its answer complete, both shown exactly by the chat JSON; a first prompt titles the chat', async () => {
  await fc.assert(
    fc.asyncProperty(text, async (content) => {
      await judge.begin();
      const chat = (await clients.user.postJson('/api/chats', { llm: ids.model })).json() as { id: number };
      const res = await app.inject({
        method: 'POST',
        url: `/api/chats/${chat.id}/messages`,
        payload: JSON.stringify({ content }),
        headers: { cookie: clients.user.cookieHeader(), 'x-csrf-token': clients.user.csrf, 'content-type': 'application/json' },
      });
      const acceptable = storable(content) && chars(content) <= config.MAX_PROMPT_CHARS && content.trim().length > 0;
      assert.equal(res.statusCode < 400, acceptable, said('prompt', content, res));
      if (res.statusCode < 400) {
        const events = parseSse(res.body);
        assert.ok(
          events.some((e) => e.event === 'done'),
          `no done event: ${res.body.slice(-300)}`,
        );
        const json = (await clients.user.get(`/api/chats/${chat.id}`)).json() as {
          title: string;
          turns: Array<{ content: string; response: { status: string; markdown: string } }>;
        };
        const turn = json.turns.at(-1);
        assert.equal(turn?.content, readBack(content));
        assert.equal(turn?.response.status, 'complete');
        assert.equal(turn?.response.markdown, tokensText(events));
        assert.equal(json.title, titleFrom(content));
        await assertPromptStored(chat.id, content);
      }
      await db.deleteFrom('chatbot_schema.chat').where('idchat', '=', chat.id).execute();
      await judge.start();
    }),
    options(Math.ceil(RUNS / 2)),
  );
});

test('a prompt of exactly the maximum length is accepted and stored whole, whatever its characters (bytes on the wire)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...LIMIT_UNITS), async (unit) => {
      await judge.begin();
      const content = `a${unit.repeat(config.MAX_PROMPT_CHARS - 1)}`;
      const chat = (await clients.user.postJson('/api/chats', { llm: ids.model })).json() as { id: number };
      const res = await app.inject({
        method: 'POST',
        url: `/api/chats/${chat.id}/messages`,
        payload: JSON.stringify({ content }),
        headers: { cookie: clients.user.cookieHeader(), 'x-csrf-token': clients.user.csrf, 'content-type': 'application/json' },
      });
      assert.equal(
        res.statusCode,
        200,
        `${config.MAX_PROMPT_CHARS} × ${JSON.stringify(unit)} (${Buffer.byteLength(JSON.stringify({ content }))} bytes of JSON) → ${res.statusCode} ${res.body.slice(0, 200)}`,
      );
      await assertPromptStored(chat.id, content);
      await db.deleteFrom('chatbot_schema.chat').where('idchat', '=', chat.id).execute();
      await judge.start();
    }),
    options(LIMIT_UNITS.length),
  );
});

test('a model name and model id: stored trimmed, shown exactly on the models page and the edit form', async () => {
  await fc.assert(
    fc.asyncProperty(text, text, async (name, model) => {
      await judge.begin();
      const res = await postForm('admin', '/admin/models', { name, baseUrl: world.llm.baseUrl, model, enabled: 'on' });
      const acceptable =
        formSafe(name) && noBidi(name) && formSafe(model) && chars(name) <= 100 && chars(model) <= 200 && name.trim().length > 0 && model.trim().length > 0;
      assert.equal(res.statusCode < 400, acceptable, said('model', `${name} / ${model}`, res));
      if (res.statusCode < 400) {
        const row = await db
          .selectFrom('chatbot_schema.llm')
          .select(['idllm', 'txshortname', 'txmodel'])
          .orderBy('idllm', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
        assert.deepEqual([row.txshortname, row.txmodel], [name.trim(), model.trim()]);
        const list = await clients.admin.get('/admin/models');
        assert.ok(list.body.includes(escapeHtml(name.trim())), `the models page does not show ${JSON.stringify(name.trim())}`);
        const edit = await clients.admin.get(`/admin/models/${row.idllm}/edit`);
        assert.ok(edit.body.includes(`value="${escapeHtml(model.trim())}"`), `the edit form does not show ${JSON.stringify(model.trim())}`);
        await db.deleteFrom('chatbot_schema.llm').where('idllm', '=', row.idllm).execute();
        await judge.start();
      } else await judge.judge(`model ${JSON.stringify(name)}`, res);
    }),
    options(),
  );
});

let fresh = 0;
test('an account by registration or by an Admin: the name stored trimmed and shown exactly on its admin page', async () => {
  await fc.assert(
    fc.asyncProperty(text, fc.boolean(), async (username, byAdmin) => {
      await judge.begin();
      const email = `round${++fresh}-${Date.now()}@example.com`;
      const res = byAdmin
        ? await postForm('admin', '/admin/users/new', { username, email, password: DEFAULT_PASSWORD })
        : await postForm('anonymous', '/register', { username, email, password: DEFAULT_PASSWORD });
      const expected = username.trim();
      // Names are trimmed first (a tab or newline around one is whitespace, not a control), then checked.
      const acceptable = formSafe(expected) && noBidi(expected) && nameFits(expected);
      assert.equal(res.statusCode < 400, acceptable, said(byAdmin ? 'new user' : 'registration', username, res));
      if (res.statusCode < 400) {
        const row = await db.selectFrom('chatbot_schema.app_user').select(['idappuser', 'txusername']).where('txemail', '=', email).executeTakeFirstOrThrow();
        assert.equal(row.txusername, expected);
        const page = await clients.admin.get(`/admin/users/${row.idappuser}`);
        assert.ok(page.body.includes(escapeHtml(expected)), `the user page does not show ${JSON.stringify(expected)}`);
      }
      await judge.judge(`account ${JSON.stringify(username)}`, res);
    }),
    options(Math.ceil(RUNS / 2)),
  );
});

test("a session's browser and address (User-Agent, X-Forwarded-For): stored as sent, at most 300 characters, and Settings still render", async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(headerText(400), fc.constant('M'.repeat(5000))), headerText(60), async (userAgent, forwardedFor) => {
      await judge.begin();
      const res = await postForm(
        'anonymous',
        '/login',
        { email: 'user@example.com', password: DEFAULT_PASSWORD },
        {
          'user-agent': userAgent,
          'x-forwarded-for': forwardedFor,
        },
      );
      assert.equal(res.statusCode, 303, said('sign-in with user agent', userAgent, res));
      const token = (res.cookies as Array<{ name: string; value: string }>).find((c) => c.name === 'parley_session')?.value;
      assert.ok(token, 'no session cookie');
      const row = await db
        .selectFrom('chatbot_schema.session')
        .select(['txuser_agent', 'txip'])
        .where('idsession', '=', sha256Hex(token))
        .executeTakeFirstOrThrow();
      assert.equal(row.txuser_agent, userAgent.slice(0, 300));
      const settings = await app.inject({ method: 'GET', url: '/settings', headers: { cookie: `parley_session=${token}` } });
      assert.equal(settings.statusCode, 200, settings.body.slice(0, 200));
      if (row.txip) assert.ok(settings.body.includes(escapeHtml(row.txip)), `Settings do not show the address ${JSON.stringify(row.txip)}`);
      await db.deleteFrom('chatbot_schema.session').where('idsession', '=', sha256Hex(token)).execute();
      await judge.start();
    }),
    options(Math.ceil(RUNS / 3)),
  );
});

test('the app is healthy after the round trips', async () => {
  await world.assertHealthy();
  console.log(`# hostile round trips: ${judge.generated} judged requests (${judge.refused} refused with 4xx, rows checked unchanged)`);
});
