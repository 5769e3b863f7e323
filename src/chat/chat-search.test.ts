import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import type { TestClient } from '../../test/client.ts';
import { catchUpPercent } from '../db/catch-up.ts';
import { openDatabase, serverUrlOf } from '../db/database.ts';
import { SEARCH_QUERY_MAX_CHARS } from './chat-search.ts';
import { CATCH_UP_CHAT_SEARCH, searchBackfillJob } from './search-backfill.ts';

// Search of one's own chats (GET /chat/search, GET /api/chats?q=; migration 028), on both databases.

let w: ChatWorld;
before(async () => {
  w = await startChatWorld();
});
after(() => w.close());

const db = () => w.t.database.db;

/** A chat with one answered prompt (the fake model answers "You said: <prompt>" and a fixed paragraph). */
async function chatWith(client: TestClient, prompt: string, title?: string): Promise<number> {
  const chatId = await newChat(client, w.modelId);
  const events = parseSse((await client.postJson(`/api/chats/${chatId}/messages`, { content: prompt })).body);
  assert.equal(events.at(-1)?.event, 'done');
  if (title !== undefined) await rename(client, chatId, title);
  return chatId;
}

async function rename(client: TestClient, chatId: number, title: string): Promise<void> {
  const res = await client.app.inject({
    method: 'PATCH',
    url: `/api/chats/${chatId}`,
    payload: { title },
    headers: { cookie: client.cookieHeader(), 'x-csrf-token': client.csrf },
  });
  assert.equal(res.statusCode, 200);
}

interface ApiResult {
  id: number;
  title: string | null;
  title_html: string | null;
  passage: { source: string; text: string; html: string; cut_before: boolean; cut_after: boolean } | null;
}
async function searchApi(client: TestClient, q: string): Promise<{ status: number; results: ApiResult[]; note: string | null; body: string }> {
  const res = await client.get(`/api/chats?q=${encodeURIComponent(q)}`);
  const json = res.statusCode === 200 ? (res.json() as { results: ApiResult[]; note: string | null }) : { results: [], note: null };
  return { status: res.statusCode, ...json, body: res.body };
}
const ids = async (client: TestClient, q: string) => (await searchApi(client, q)).results.map((r) => r.id);

test('a user finds only their own chats, though another user wrote the same words', async () => {
  const bobs = await chatWith(w.user, 'How do marmalade otters sleep?');
  const adas = await chatWith(w.admin, 'Do marmalade otters sleep in winter?');
  assert.deepEqual(await ids(w.user, 'marmalade otters'), [bobs]);
  assert.deepEqual(await ids(w.admin, 'marmalade otters'), [adas]);
  // The answer is searchable once finished: "compare" is only in the fake model's answer.
  assert.deepEqual(await ids(w.user, 'marmalade compare'), [bobs]);
  const page = await w.user.get('/chat/search?q=marmalade');
  assert.equal(page.statusCode, 200);
  assert.match(page.body, new RegExp(`href="/chat/${bobs}"`));
  assert.doesNotMatch(page.body, new RegExp(`href="/chat/${adas}"`));
  // A search row that names the wrong owner (as a bug in its upkeep would) still shows nothing of another's chat.
  await sql`UPDATE chatbot_schema.chat_search SET idappuser = (SELECT idappuser FROM chatbot_schema.chat WHERE idchat = ${bobs}) WHERE idchat = ${adas}`.execute(
    db(),
  );
  assert.deepEqual(await ids(w.user, 'marmalade otters'), [bobs]);
  await sql`SELECT chatbot_schema.refresh_chat_search(ARRAY[${adas}]::int[])`.execute(db());
});

test('the matched words are marked in an escaped passage: a prompt holding HTML shows as text', async () => {
  const hostile = '<img src=x onerror=alert(1)> zebrafinch <script>alert(2)</script> "quote" & \u0001unpaired\u0002 mark';
  const chatId = await chatWith(w.user, hostile);
  const { results } = await searchApi(w.user, 'zebrafinch');
  assert.equal(results.length, 1);
  const passage = results[0]?.passage;
  assert.equal(passage?.source, 'prompt');
  assert.match(
    passage?.html ?? '',
    /onerror=alert\(1\)&gt; <mark>zebrafinch<\/mark> &lt;script&gt;alert\(2\)&lt;\/script&gt; &quot;quote&quot; &amp; unpaired mark/,
  );
  assert.doesNotMatch(passage?.html ?? '', /<img|<script|\u0001|\u0002/);
  assert.match(passage?.text ?? '', /onerror=alert\(1\)> zebrafinch <script>/);
  assert.deepEqual([passage?.cut_before, passage?.cut_after], [true, false], 'the passage starts inside the prompt and runs to its end');

  const page = await w.user.get('/chat/search?q=zebrafinch');
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<mark>zebrafinch<\/mark>/);
  assert.doesNotMatch(page.body, /<img src=x|<script>alert/);
  assert.match(page.body, new RegExp(`href="/chat/${chatId}"`));
});

test('titles, prompts and answers are searched; a chat named for the words ranks first', async () => {
  // A chat's first prompt is its title until renamed; the fake model's answer repeats the prompt ("You said: …").
  const inAnswer = await chatWith(w.user, 'tell me about ocelots', 'Wild cats');
  const titled = await chatWith(w.user, 'anything at all', 'Ocelots and their habits');
  const { results } = await searchApi(w.user, 'ocelots');
  assert.deepEqual(
    results.map((r) => r.id),
    [titled, inAnswer],
  );
  assert.equal(results[0]?.title_html, '<mark>Ocelots</mark> and their habits');
  // An answer's markdown is searched, not its HTML: the fake answer's paragraph says "compare", and its
  // HTML's highlighting markup (hljs class names) is not searched.
  const byAnswer = (await searchApi(w.user, 'ocelots compare')).results;
  // The prompt holds "ocelots" but not "compare": the passage comes from the answer, which holds both. The renamed
  // chat matches too (title and answer) but no one text of it holds both words: no passage.
  assert.deepEqual(
    byAnswer.map((r) => [r.id, r.passage?.source ?? null]).sort(),
    [
      [inAnswer, 'answer'],
      [titled, null],
    ].sort(),
  );
  assert.deepEqual(await ids(w.user, 'hljs'), []);
});

test('websearch syntax: phrases, exclusions, or; words of any language', async () => {
  const a = await chatWith(w.user, 'purple heron nests by the lake');
  const b = await chatWith(w.user, 'the heron is purple and nests high');
  const notAPhrase = await chatWith(w.user, 'purple is a colour; the word after it here is not heron');
  const c = await chatWith(w.user, 'Straße café ΑΘΗΝΑ москва 東京');
  assert.deepEqual((await ids(w.user, 'purple heron')).sort(), [a, b, notAPhrase].sort());
  assert.deepEqual(await ids(w.user, '"purple heron"'), [a]);
  assert.deepEqual(await ids(w.user, '"purple heron" nests'), [a]);
  // A phrase excluded: chats with both words apart still match (the phrase is checked, not just its words).
  assert.deepEqual((await ids(w.user, 'heron -"purple heron"')).sort(), [b, notAPhrase].sort());
  assert.deepEqual((await ids(w.user, 'heron -lake')).sort(), [b, notAPhrase].sort());
  assert.deepEqual((await ids(w.user, 'lake or high')).sort(), [a, b].sort());
  for (const word of ['straße', 'CAFÉ', 'αθηνα', 'Москва', '東京']) assert.deepEqual(await ids(w.user, word), [c], word);
});

test('bad queries get a 400 with a reason or an empty result, never a 500', async () => {
  assert.equal((await w.user.get('/api/chats')).statusCode, 400);
  assert.equal((await w.user.get('/api/chats?q=')).statusCode, 400);
  assert.equal((await w.user.get('/api/chats?q=a&q=b')).statusCode, 400);
  const huge = await w.user.get(`/api/chats?q=${'a'.repeat(SEARCH_QUERY_MAX_CHARS + 1)}`);
  assert.equal(huge.statusCode, 400);
  assert.match(huge.body, /at most 200 characters/);
  for (const q of ['!!!', '&|!<->', ':*', '"', '-', 'or', '((((']) {
    const r = await searchApi(w.user, q);
    assert.equal(r.status, 200, `${q}: ${r.body}`);
    assert.deepEqual(r.results, []);
  }
  const onlyNot = await searchApi(w.user, '-heron');
  assert.deepEqual(onlyNot.results, []);
  assert.match(onlyNot.note ?? '', /Add a word/);

  assert.equal((await w.user.get('/chat/search')).statusCode, 200);
  assert.equal((await w.user.get('/chat/search?q=')).statusCode, 200);
  const pageHuge = await w.user.get(`/chat/search?q=${'b'.repeat(SEARCH_QUERY_MAX_CHARS + 1)}`);
  assert.equal(pageHuge.statusCode, 400);
  assert.match(pageHuge.body, /at most 200 characters/);
  assert.equal((await w.user.get('/chat/search?q=a&q=b')).statusCode, 400);
  assert.match((await w.user.get('/chat/search?q=%21%21')).body, /no words to search for/);
  // Signed out: the page sends to sign-in, the API answers 401.
  const anonymous = await w.t.app.inject({ method: 'GET', url: '/api/chats?q=heron' });
  assert.equal(anonymous.statusCode, 401);
});

test('the search rows follow the chats: edits, deletions, and a text too big for one vector', async () => {
  const chatId = await chatWith(w.user, 'kumquat sorbet recipe', 'Sorbets');
  await sql`UPDATE chatbot_schema.message SET txmessage = 'persimmon sorbet recipe' WHERE idchat = ${chatId}`.execute(db());
  const edited = (await searchApi(w.user, 'persimmon')).results;
  assert.deepEqual(
    edited.map((r) => [r.id, r.passage?.source]),
    [[chatId, 'prompt']],
  );
  // The old word is left in the answer only ("You said: kumquat …").
  assert.equal((await searchApi(w.user, 'kumquat')).results[0]?.passage?.source, 'answer');

  // More than 1 MB of distinct words: to_tsvector refuses it; the write still succeeds and the start is searchable.
  const words = Array.from({ length: 120_000 }, (_, i) => `w${i.toString(36)}x${(i * 7919).toString(36)}`).join(' ');
  await sql`INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chatId}, ${`quinceword ${words}`})`.execute(db());
  assert.deepEqual(await ids(w.user, 'quinceword'), [chatId]);

  const res = await w.user.app.inject({
    method: 'DELETE',
    url: `/api/chats/${chatId}`,
    headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
  });
  assert.equal(res.statusCode, 204);
  const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.chat_search WHERE idchat = ${chatId}`.execute(db());
  assert.equal(left.rows[0]?.n, 0);
});

test('chats written before migration 028 are indexed by the catch-up job', async () => {
  const chatId = await chatWith(w.user, 'tamarind chutney');
  await sql`DELETE FROM chatbot_schema.chat_search`.execute(db());
  assert.deepEqual(await ids(w.user, 'tamarind'), []);
  const job = searchBackfillJob(2);
  const percent = await job.percent(db());
  assert.equal(percent, 0);
  let batches = 0;
  while (await job.step(db())) batches++;
  assert.ok(batches > 1, 'several batches');
  assert.deepEqual(await ids(w.user, 'tamarind'), [chatId]);
  assert.equal(await catchUpPercent(db(), CATCH_UP_CHAT_SEARCH), null);
});

test('the ranking reads the user’s rows through the indexes', async () => {
  await sql`SET enable_seqscan = off`.execute(db());
  const plan = await sql<{ 'QUERY PLAN': string }>`
    EXPLAIN SELECT idchat FROM chatbot_schema.chat_search WHERE idappuser = 1 AND tsv @@ websearch_to_tsquery('simple', 'heron')`.execute(db());
  await sql`RESET enable_seqscan`.execute(db());
  assert.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), /chat_search_user_tsv_idx/);
});

test('two writers of one chat at once: its row holds both changes (bites only on PostgreSQL)', async (t) => {
  const url = serverUrlOf(db());
  if (!url) return t.skip('PGlite has one connection');
  const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(db());
  const other = new URL(url);
  other.pathname = `/${rows[0]?.name}`;
  const second = await openDatabase({ databaseUrl: other.toString() });
  try {
    const chatId = await chatWith(w.user, 'walrus tusks', 'Walruses');
    let messageWritten: Promise<void> | undefined;
    await db()
      .transaction()
      .execute(async (rename) => {
        // The rename's trigger has rewritten (and locked) the chat's row; a prompt arrives on another connection and
        // its trigger waits for that row. Each transaction sees only its own change until the other commits.
        await sql`UPDATE chatbot_schema.chat SET txtitle = 'Narwhal facts' WHERE idchat = ${chatId}`.execute(rename);
        const renamer = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(rename)).rows[0]?.pid;
        messageWritten = second.db.transaction().execute(async (trx) => {
          await sql`INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chatId}, 'beluga song')`.execute(trx);
        });
        await waitFor(async () => {
          // Asked on another connection: a transaction sees pg_stat_activity as it was at its first look.
          const waiting = await sql<{ n: number }>`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${renamer}::int = ANY(pg_blocking_pids(pid))`.execute(db());
          return (waiting.rows[0]?.n ?? 0) > 0 ? true : undefined;
        });
      });
    await messageWritten;
    assert.deepEqual(await ids(w.user, 'narwhal beluga'), [chatId]);
  } finally {
    await second.close();
  }
});
