import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createSession } from '../src/auth/sessions.ts';
import { adoptedAnswersJob, type RerenderOptions } from '../src/chat/adopted-answers.ts';
import { beginAnswer } from '../src/chat/chat-queries.ts';
import { renderAdoptedAnswer, renderMarkdown } from '../src/chat/markdown.ts';
import { migrateCommand } from '../src/cli/migrate.ts';
import { CATCH_UP_ADOPTED_ANSWERS, catchUpPercent } from '../src/db/catch-up.ts';
import { type Db, type OpenedDatabase, openDatabase } from '../src/db/database.ts';
import { DEFERRED_INDEXES } from '../src/db/deferred-indexes.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { findUserByEmail } from '../src/users/user-queries.ts';
import { startTestApp } from './app.ts';
import { TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';

/**
 * A database made by the Flask prototype (test/fixtures/flask-prototype.sql) is adopted in place: the
 * migrations add what is missing around the existing rows, and the app runs on the result.
 */
const fixture = readFileSync(path.join(import.meta.dirname, 'fixtures/flask-prototype.sql'), 'utf8');

let database: OpenedDatabase;
let snapshot: Record<string, unknown[]>;

/** The prototype's own columns only, so the comparison ignores what the migrations add. */
const prototypeQueries = {
  app_user: sql`SELECT idappuser, txusername, txemail, password FROM chatbot_schema.app_user ORDER BY idappuser`,
  role: sql`SELECT idrole, txname FROM chatbot_schema.role ORDER BY idrole`,
  user_role: sql`SELECT idappuser, idrole FROM chatbot_schema.user_role ORDER BY idappuser, idrole`,
  llm: sql`SELECT idllm, txshortname FROM chatbot_schema.llm ORDER BY idllm`,
  chat: sql`SELECT idchat, idappuser, idllm FROM chatbot_schema.chat ORDER BY idchat`,
  message: sql`SELECT idmessage, idchat, txmessage FROM chatbot_schema.message ORDER BY idmessage`,
  // txcontent is left out: adoption replaces the prototype's HTML with our own rendering (checked below).
  response: sql`SELECT idchat, idmessage, idllm, txmarkdown FROM chatbot_schema.response ORDER BY idmessage`,
};

/** The prototype's HTML answers that must never reach a page: each a tag or attribute that runs script. */
const HOSTILE_MARKUP = [/<script/i, /<img/i, /<[^>]*\son\w+=/i, /href="javascript:/i];
const prototypeHtml = new Map<number, string | null>();

/** Nothing the prototype's HTML carried may be a tag or attribute in `html` (escaped as text is fine). */
function assertNoHostileMarkup(html: string, where: string): void {
  for (const re of HOSTILE_MARKUP) assert.doesNotMatch(html, re, where);
}

/** Runs the re-rendering catch-up job of one process (at most `maxBatches` batches); returns how many rows it rendered. */
async function rerender(db: Db, opts: RerenderOptions & { maxBatches?: number } = {}): Promise<number> {
  let rendered = 0;
  const job = adoptedAnswersJob({
    ...opts,
    render: (markdown, html, id) => {
      rendered++;
      return opts.render ? opts.render(markdown, html, id) : renderAdoptedAnswer(markdown, html);
    },
  });
  for (let batch = 0; batch < (opts.maxBatches ?? Number.POSITIVE_INFINITY) && (await job.step(db)); batch++);
  return rendered;
}

const deferredIndexesPresent = async () =>
  (await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE indexname = ANY(${DEFERRED_INDEXES.map((ix) => ix.name)})`.execute(database.db)).rows
    .map((r) => r.indexname)
    .sort();

const notOurs = async () =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.response WHERE NOT is_html_ours`.execute(database.db)).rows[0]?.n;

async function readPrototypeRows(): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, query] of Object.entries(prototypeQueries)) out[table] = (await query.execute(database.db)).rows;
  return out;
}

before(async () => {
  database = await openTestDatabase({ migrate: false });
  await sql.raw(fixture).execute(database.db);
  snapshot = await readPrototypeRows();
  const rows = await sql<{ idmessage: number; txcontent: string | null }>`SELECT idmessage, txcontent FROM chatbot_schema.response`.execute(database.db);
  for (const r of rows.rows) prototypeHtml.set(r.idmessage, r.txcontent);
});
after(() => database.close());

test('the fixture really is the old shape (no columns from the ALTERs yet)', async () => {
  const columns = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns
    WHERE table_schema = 'chatbot_schema' AND table_name IN ('app_user', 'response')`.execute(database.db);
  const names = columns.rows.map((c) => c.column_name);
  for (const added of ['is_active', 'totp_secret', 'is_2fa_enabled', 'tinf_start', 'tinf_end', 'idresponse']) assert.ok(!names.includes(added), added);
  assert.equal(snapshot.app_user?.length, 3);
  assert.equal(snapshot.response?.length, 6);
  assert.match(prototypeHtml.get(4) ?? '', /<script>alert/);
});

test('migrating twice applies every migration once, then nothing', async () => {
  const first = await migrateToLatest(database.db);
  assert.ok(first.includes('001-foundation'), first.join());
  assert.deepEqual(await migrateToLatest(database.db), []);
});

test('the migrations leave the adopted answers to the catch-up after start: none is re-rendered yet', async () => {
  // A million of them take about 15 minutes to render; the server re-renders them after it listens (src/db/catch-up.ts).
  assert.equal(await notOurs(), 6);
  assert.equal(await catchUpPercent(database.db, CATCH_UP_ADOPTED_ANSWERS), null, 'not counted before a process begins');
  // Nor are the indexes over these tables built yet: each would read every row before the first request.
  assert.deepEqual(await deferredIndexesPresent(), []);
});

test('every prototype row is intact', async () => {
  assert.deepEqual(await readPrototypeRows(), snapshot);
});

test('the added columns exist with their defaults on the old rows', async () => {
  const users = await database.db.selectFrom('chatbot_schema.app_user').select(['is_active', 'is_2fa_enabled', 'totp_secret']).execute();
  assert.equal(users.length, 3);
  for (const u of users) assert.deepEqual(u, { is_active: true, is_2fa_enabled: false, totp_secret: null });

  const defaults = await sql<{ column_name: string; column_default: string | null; is_nullable: string }>`
    SELECT column_name, column_default, is_nullable FROM information_schema.columns
    WHERE table_schema = 'chatbot_schema' AND table_name = 'app_user'
      AND column_name IN ('is_active', 'is_2fa_enabled', 'password')
    ORDER BY column_name`.execute(database.db);
  assert.deepEqual(
    defaults.rows.map((c) => [c.column_name, c.column_default?.toLowerCase() ?? null, c.is_nullable]),
    [
      ['is_2fa_enabled', 'false', 'NO'],
      ['is_active', 'true', 'NO'],
      // Google-only accounts have no password.
      ['password', null, 'YES'],
    ],
  );

  const responses = await database.db
    .selectFrom('chatbot_schema.response')
    .select(['idresponse', 'tinf_start', 'tinf_end', 'txstatus'])
    .orderBy('idresponse')
    .execute();
  assert.equal(responses.length, 6);
  assert.equal(new Set(responses.map((r) => r.idresponse)).size, 6);
  for (const r of responses) {
    assert.equal(typeof r.idresponse, 'number');
    assert.equal(r.tinf_start, null);
    assert.equal(r.tinf_end, null);
    // Every adopted answer is complete: a start that adopts the database has no answer to sweep (server.ts).
    assert.equal(r.txstatus, 'complete');
  }
  // A new response gets the next id from the identity, after the adopted ones.
  const inserted = await database.db
    .insertInto('chatbot_schema.response')
    .values({ idchat: 1, idmessage: 1, idllm: 1, txcontent: 'x', txmarkdown: 'x' })
    .returning(['idresponse', 'is_html_ours'])
    .executeTakeFirstOrThrow();
  assert.ok(inserted.idresponse > Math.max(...responses.map((r) => r.idresponse)));
  // What Parley inserts from now on is its own rendering.
  assert.equal(inserted.is_html_ours, true);
  await database.db.deleteFrom('chatbot_schema.response').where('idresponse', '=', inserted.idresponse).execute();
});

test('the app runs on the adopted database', async () => {
  const t = await startTestApp({}, database);
  try {
    const alice = await findUserByEmail(database.db, 'Alice@Example.com');
    assert.deepEqual(alice && { id: alice.id, username: alice.username, isActive: alice.isActive }, { id: 1, username: 'Alice', isActive: true });

    // A prototype admin's session works, and the navbar knows they are an Admin.
    const token = await createSession(database.db, 1, {});
    const page = await t.app.inject({ method: 'GET', url: '/chat', cookies: { parley_session: token } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /href="\/admin\/models"/);
    assert.match(page.body, /Alice/);

    // Registration works, gets the next id, and is not Admin: the prototype already has users.
    const c = new TestClient(t.app);
    const res = await c.register({ username: 'Dave', email: 'dave@example.com' });
    assert.equal(res.statusCode, 303);
    const roles = await sql<{ idappuser: number; idrole: number }>`
      SELECT ur.idappuser, ur.idrole FROM chatbot_schema.user_role ur
      JOIN chatbot_schema.app_user u USING (idappuser) WHERE u.txemail = 'dave@example.com'`.execute(database.db);
    assert.deepEqual(roles.rows, [{ idappuser: 4, idrole: 2 }]);
    // The e-mail uniqueness the prototype had still holds, now case-insensitively.
    assert.equal((await new TestClient(t.app).register({ username: 'Bob 2', email: 'BOB@example.com' })).statusCode, 409);
  } finally {
    await t.close();
  }
});

test('prototype users sign in with their old password, which is then rehashed with argon2id', async () => {
  const t = await startTestApp({}, database);
  try {
    for (const email of ['alice@example.com', 'bob@example.com']) {
      assert.equal((await new TestClient(t.app).login(email, 'wrong password')).statusCode, 401);
      const res = await new TestClient(t.app).login(email, 'prototype password');
      assert.equal(res.statusCode, 303, email);
      const row = await database.db.selectFrom('chatbot_schema.app_user').select('password').where('txemail', '=', email).executeTakeFirstOrThrow();
      assert.match(row.password ?? '', /^\$argon2id\$/);
      assert.equal((await new TestClient(t.app).login(email, 'prototype password')).statusCode, 303);
    }
    // The Google-only account (empty password) cannot sign in with any password.
    assert.equal((await new TestClient(t.app).login('carol@example.com', '')).statusCode, 400);
    assert.equal((await new TestClient(t.app).login('carol@example.com', 'anything at all')).statusCode, 401);
  } finally {
    await t.close();
  }
});

/** Bob (user 2) owns chat 1, which holds the hostile, odd and markdown-less answers. */
async function bobsChat(t: Awaited<ReturnType<typeof startTestApp>>): Promise<{ page: string; api: string; apiHtml: string[] }> {
  const token = await createSession(database.db, 2, {});
  const page = await t.app.inject({ method: 'GET', url: '/chat/1', cookies: { parley_session: token } });
  assert.equal(page.statusCode, 200);
  // The conversation only: the page's own <script src> tags come after it.
  const thread = page.body.slice(page.body.indexOf('id="chat-thread"'), page.body.indexOf('<template'));
  assert.match(thread, /data-message-id="6"/);
  const api = await t.app.inject({ method: 'GET', url: '/api/chats/1', cookies: { parley_session: token } });
  assert.equal(api.statusCode, 200);
  const turns = api.json().turns as Array<{ response: { html: string } | null }>;
  return { page: thread, api: api.body, apiHtml: turns.map((turn) => turn.response?.html ?? '') };
}

test('before the catch-up, the page and GET /api/chats/:id never emit the prototype HTML: they render the markdown', async () => {
  const t = await startTestApp({}, database);
  try {
    const { page, apiHtml } = await bobsChat(t);
    assertNoHostileMarkup(page, 'page');
    for (const html of apiHtml) assertNoHostileMarkup(html, 'api');
    assert.match(page, /&lt;script&gt;alert/);
  } finally {
    await t.close();
  }
});

test('an app that listens re-renders them in the background, and reports how far it is', async () => {
  const t = await startTestApp({}, database);
  try {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    for (const deadline = Date.now() + 20_000; (await notOurs()) !== 0; ) {
      assert.ok(Date.now() < deadline, 'the catch-up did not finish within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(await catchUpPercent(database.db, CATCH_UP_ADOPTED_ANSWERS), null, 'nothing left');
    const counts = await sql<{ ntotal: number; ndone: number }>`SELECT ntotal, ndone FROM chatbot_schema.catch_up WHERE txjob = 'adopted-answers'`.execute(
      database.db,
    );
    assert.deepEqual(counts.rows, [{ ntotal: 6, ndone: 6 }]);
    assert.deepEqual(await deferredIndexesPresent(), DEFERRED_INDEXES.map((ix) => ix.name).sort(), 'built first');
  } finally {
    await t.close();
  }
});

test('adopted HTML is re-rendered from its markdown by our renderer and marked as ours', async () => {
  const rows = await database.db
    .selectFrom('chatbot_schema.response')
    .select(['idmessage', 'txmarkdown', 'txcontent', 'is_html_ours'])
    .where('idmessage', 'in', [1, 2, 3, 4, 5, 6])
    .orderBy('idmessage')
    .execute();
  assert.equal(rows.length, 6);
  for (const r of rows) {
    assert.equal(r.is_html_ours, true, `message ${r.idmessage}`);
    assertNoHostileMarkup(r.txcontent ?? '', `message ${r.idmessage}`);
    if (r.txmarkdown !== null) assert.equal(r.txcontent, renderMarkdown(r.txmarkdown), `message ${r.idmessage}`);
  }
  const byMessage = new Map(rows.map((r) => [r.idmessage, r.txcontent ?? '']));
  assert.equal(byMessage.get(1), '<p>An open-source <strong>relational</strong> database.</p>\n');
  // The script became text the user can read; the markdown around it still renders.
  assert.match(byMessage.get(4) ?? '', /<strong>here<\/strong>/);
  assert.match(byMessage.get(4) ?? '', /&lt;script&gt;alert\("xss"\)&lt;\/script&gt;/);
  // The odd row rendered (markdown-it caps the quoting at 100 levels), its javascript: link only as text.
  assert.match(byMessage.get(5) ?? '', /^<p>odd\x01 text<\/p>\n<blockquote>/);
  assert.match(byMessage.get(5) ?? '', /<p>\[click\]\(javascript:alert\(3\)\)<\/p>/);
  assert.match(byMessage.get(5) ?? '', /<code class="hljs language-js">.*unclosed/);
  // No markdown left: the prototype's HTML went through our sanitizer, keeping its text and harmless tags.
  assert.equal(byMessage.get(6), '<p>Only <em>HTML</em> was kept</p>');
});

test('a row not re-rendered yet is never emitted as trusted HTML: the page and the API render its markdown', async () => {
  // As if the server had stopped after the migration, before the re-rendering step reached these rows.
  await sql`UPDATE chatbot_schema.response SET is_html_ours = FALSE, txcontent = ${prototypeHtml.get(4) ?? ''} WHERE idchat = 1`.execute(database.db);
  const t = await startTestApp({}, database);
  try {
    const { page, apiHtml } = await bobsChat(t);
    assertNoHostileMarkup(page, 'page');
    for (const html of apiHtml) assertNoHostileMarkup(html, 'api');
    assert.match(page, /An open-source <strong>relational<\/strong> database/);
    assert.ok(apiHtml.includes('<p>An open-source <strong>relational</strong> database.</p>\n'), apiHtml.join('|'));
  } finally {
    await t.close();
  }
});

test('the re-rendering resumes where it stopped, says how far it is, and a second run finds nothing to do', async () => {
  const pending = await notOurs(); // the rows of chat 1, from the test above
  assert.equal(pending, 5);
  // Interrupted after one batch of two rows: those two are done and marked, the others wait.
  assert.equal(await rerender(database.db, { batchSize: 2, maxBatches: 1 }), 2);
  assert.equal(await notOurs(), 3);
  // Counted from where this job began: 6 done before, 5 more to do, 2 of them done.
  assert.equal(await catchUpPercent(database.db, CATCH_UP_ADOPTED_ANSWERS), Math.floor((100 * 8) / 11));
  // The next start picks up the rest, in batches.
  assert.equal(await rerender(database.db, { batchSize: 2 }), 3);
  assert.equal(await notOurs(), 0);
  assert.equal(await catchUpPercent(database.db, CATCH_UP_ADOPTED_ANSWERS), null);
  assert.equal(await rerender(database.db), 0);
  const rows = await database.db.selectFrom('chatbot_schema.response').select(['txmarkdown', 'txcontent']).where('idchat', '=', 1).execute();
  for (const r of rows) {
    assertNoHostileMarkup(r.txcontent ?? '', 'after resuming');
    if (r.txmarkdown !== null) assert.equal(r.txcontent, renderMarkdown(r.txmarkdown));
  }
});

test('an answer Parley begins after adoption is marked as ours', async () => {
  await database.db.updateTable('chatbot_schema.llm').set({ txbase_url: 'http://127.0.0.1:9/v1' }).where('idllm', '=', 1).execute();
  try {
    const begun = await beginAnswer(database.db, { userId: 2, chatId: 1, prompt: 'A new question', maxActive: 5 });
    assert.equal(begun.outcome, 'ok');
    if (begun.outcome !== 'ok') return;
    const row = await database.db
      .selectFrom('chatbot_schema.response')
      .select('is_html_ours')
      .where('idresponse', '=', begun.responseId)
      .executeTakeFirstOrThrow();
    assert.equal(row.is_html_ours, true);
    // The prototype's foreign keys do not cascade.
    await database.db.deleteFrom('chatbot_schema.response').where('idresponse', '=', begun.responseId).execute();
    await database.db.deleteFrom('chatbot_schema.message').where('idmessage', '=', begun.messageId).execute();
  } finally {
    await database.db.updateTable('chatbot_schema.llm').set({ txbase_url: null }).where('idllm', '=', 1).execute();
  }
});

test('two processes re-rendering at once share the rows and render each once (PostgreSQL)', async (t) => {
  // PGlite: one process per data directory, and its job renders outside a transaction (src/chat/adopted-answers.ts).
  if (database.kind !== 'postgres') return t.skip('one process per embedded database');
  // More rows than the fixture's, so that the two walks overlap for many batches.
  await sql`
    INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, is_html_ours)
    SELECT idchat, idmessage, idllm, txmarkdown || ' ' || g, txcontent, FALSE FROM chatbot_schema.response CROSS JOIN generate_series(1, 20) g`.execute(
    database.db,
  );
  await sql`UPDATE chatbot_schema.response SET is_html_ours = FALSE`.execute(database.db);
  const total = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.response`.execute(database.db)).rows[0]?.n ?? 0;
  const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(database.db);
  const url = new URL(process.env.TEST_DATABASE_URL ?? '');
  url.pathname = `/${rows[0]?.name}`;
  const other = await openDatabase({ databaseUrl: url.toString() });
  const renders = new Map<number, number>();
  const render = (markdown: string | null, html: string | null, id: number) => {
    renders.set(id, (renders.get(id) ?? 0) + 1);
    return renderAdoptedAnswer(markdown, html);
  };
  try {
    const counts = await Promise.all([rerender(database.db, { batchSize: 5, render }), rerender(other.db, { batchSize: 5, render })]);
    assert.equal(counts[0] + counts[1], total);
    assert.equal(renders.size, total);
    assert.deepEqual(
      [...renders].filter(([, n]) => n !== 1),
      [],
      'rows rendered more than once',
    );
    assert.equal(await notOurs(), 0);
    assert.equal(await catchUpPercent(database.db, CATCH_UP_ADOPTED_ANSWERS), null, 'the progress ends at done');
  } finally {
    await other.close();
  }
});

test('npm run migrate says what the server will catch up; with --catch-up it does it', async () => {
  await sql`UPDATE chatbot_schema.response SET is_html_ours = FALSE WHERE idchat = 1`.execute(database.db);
  const lines: string[] = [];
  const out = { info: (line: string) => void lines.push(line) };
  await migrateCommand(database.db, out);
  assert.ok(
    lines.some((l) => /^To catch up: re-rendering adopted answers \(\d+ % done\)\. The server does this in the background after it starts/.test(l)),
    lines.join('\n'),
  );
  assert.ok(((await notOurs()) ?? 0) > 0, 'only said, not done');
  lines.length = 0;
  await migrateCommand(database.db, out, { catchUp: true });
  assert.equal(await notOurs(), 0);
  assert.ok(
    lines.some((l) => /re-rendering adopted answers finished in \d+ s/.test(l)),
    lines.join('\n'),
  );
  assert.ok(!lines.some((l) => /To catch up|Still to do/.test(l)), lines.join('\n'));
});
