import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';
import { chatStats } from '../stats/stats-queries.ts';
import { IMPORT_MAX_BYTES } from './import-file.ts';
import type { ChatToImport } from './import-formats.ts';
import { EXPORT_FORMAT, type ExportedChat } from './transfer-format.ts';
import { pagesOfChatsForExport, storeImportedChats } from './transfer-queries.ts';

// Export (one chat as md/json, all chats streamed) and import (our file, ChatGPT's conversations.json): issue 21.

const fixture = readFileSync(path.join(import.meta.dirname, '../../test/fixtures/chatgpt-conversations.json'));

let w: ChatWorld;
const db = () => w.t.database.db;
before(async () => {
  w = await startChatWorld();
});
after(() => w.close());

/** A signed-in client with a CSRF token, as after opening the chat page. */
async function newUser(email: string): Promise<TestClient> {
  const c = new TestClient(w.t.app);
  await c.register({ email });
  await c.get('/chat');
  return c;
}

function upload(client: TestClient, bytes: Buffer | string, opts: { token?: string | null } = {}) {
  const boundary = `----parley${Math.random().toString(16).slice(2)}`;
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="conversations.json"\r\nContent-Type: application/json\r\n\r\n`),
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const token = opts.token === undefined ? client.csrf : opts.token;
  return client.app.inject({
    method: 'POST',
    url: '/settings/import',
    payload,
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      accept: 'application/json',
      cookie: client.cookieHeader(),
      ...(token === null ? {} : { 'x-csrf-token': token }),
    },
  });
}

async function ask(client: TestClient, chatId: number, content: string): Promise<void> {
  const events = parseSse((await client.postJson(`/api/chats/${chatId}/messages`, { content })).body);
  assert.equal(events.at(-1)?.event, 'done');
}

async function exportAll(client: TestClient): Promise<{ format: string; chats: ExportedChat[] }> {
  const res = await client.get('/settings/export');
  assert.equal(res.statusCode, 200);
  return res.json();
}

const idOf = async (email: string) =>
  (await db().selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', email).executeTakeFirstOrThrow()).idappuser;

const chatsOf = async (ownerEmail: string) =>
  db()
    .selectFrom('chatbot_schema.chat as c')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'c.idappuser')
    .select(['c.idchat', 'c.txtitle', 'c.idllm', 'c.dtcreated', 'c.dtupdated', 'c.is_imported'])
    .where('u.txemail', '=', ownerEmail)
    .orderBy('c.idchat')
    .execute();

/** Everything the statistics and the admin's prompt counts are made of. */
async function usageFingerprint(): Promise<string> {
  const tables = ['usage_day_model', 'usage_day_user', 'usage_user_total', 'usage_counter'];
  const parts = [];
  for (const t of tables)
    parts.push((await sql<{ j: unknown }>`SELECT json_agg(x ORDER BY x::text) AS j FROM ${sql.table(`chatbot_schema.${t}`)} x`.execute(db())).rows[0]?.j);
  parts.push((await db().selectFrom('chatbot_schema.app_user').select(['idappuser', 'nprompts']).orderBy('idappuser').execute()) as unknown);
  return JSON.stringify(parts);
}

describe('import of ChatGPT’s conversations.json', () => {
  test('follows current_node through the branches, keeps user and assistant text, skips what has none, and says so', async () => {
    const carol = await newUser('carol@example.com');
    const res = await upload(carol, fixture);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { imported: number; message: string; format: string };
    assert.equal(body.format, 'chatgpt');
    assert.equal(body.imported, 2);
    assert.equal(body.message, '2 chats imported, 1 skipped: no text messages (1).');

    const chats = await chatsOf('carol@example.com');
    assert.deepEqual(
      chats.map((c) => [c.txtitle, c.is_imported, c.dtcreated.toISOString(), c.dtupdated.toISOString()]),
      [
        ['Trip to Lisbon', true, '2023-11-14T22:13:20.250Z', '2023-11-14T22:28:20.500Z'],
        ['A question without an answer', true, '2023-11-17T05:46:40.000Z', '2023-11-17T05:46:40.000Z'],
      ],
    );
    const trip = (await carol.get(`/api/chats/${chats[0]?.idchat}`)).json() as {
      turns: Array<{
        content: string;
        created_at: string;
        response: { markdown: string; html: string; status: string; tinf_end: string; llm: { id: number } };
      }>;
    };
    assert.deepEqual(
      trip.turns.map((t) => [t.content, t.created_at, t.response.markdown, t.response.status, t.response.tinf_end]),
      [
        ['Plan three days in Lisbon.', '2023-11-14T22:13:30.000Z', '**Day 1**: Alfama.\n\n<script>alert(1)</script>', 'complete', '2023-11-14T22:13:50.000Z'],
        [
          'What about Porto in May?',
          '2023-11-14T22:16:40.000Z',
          'Porto in May is mild: about 22 °C.\n\nTake the train from Lisbon.',
          'complete',
          '2023-11-14T22:17:10.000Z',
        ],
      ],
      'the edited prompt and the regenerated answer of the current branch; the image, code, tool and system nodes are left out',
    );
    const html = trip.turns[0]?.response.html ?? '';
    assert.match(html, /<strong>Day 1<\/strong>/, 'rendered by the answers’ markdown renderer');
    assert.doesNotMatch(html, /<script/i, 'and sanitized like a model’s answer');
    // No model is called gpt-4o here: the chat and its answers belong to the model a new chat of Carol's would use.
    assert.deepEqual(new Set(chats.map((c) => c.idllm)), new Set([w.modelId]));
    assert.equal(trip.turns[0]?.response.llm.id, w.modelId);

    const list = (await carol.get('/chat')).body;
    assert.equal((list.match(/class="badge chat-imported-badge"/g) ?? []).length, 2, 'both chats carry the imported badge in the list');
  });

  test('a chat goes to the model of its name when there is one the user may use; its answers too', async () => {
    const gpt = await addModel(w.t.database, w.llm.baseUrl, 'gpt-4o');
    try {
      const dave = await newUser('dave@example.com');
      assert.equal((await upload(dave, fixture)).statusCode, 200);
      const [trip] = await chatsOf('dave@example.com');
      assert.equal(trip?.idllm, gpt);
      const answers = await db()
        .selectFrom('chatbot_schema.response')
        .select('idllm')
        .where('idchat', '=', trip?.idchat ?? 0)
        .execute();
      assert.deepEqual(
        answers.map((a) => a.idllm),
        [gpt, gpt],
      );
    } finally {
      // Out of the other tests' way (its chats keep it): no longer named like the fixture's model, and disabled.
      await db().updateTable('chatbot_schema.llm').set({ txshortname: 'retired', is_enabled: false }).where('idllm', '=', gpt).execute();
    }
  });

  test('a current_node that leads nowhere (a missing node, a loop) refuses the whole file', async () => {
    const erin = await newUser('erin@example.com');
    const conversations = JSON.parse(fixture.toString()) as Array<{ mapping: Record<string, { parent: string | null }>; current_node: string }>;
    const loop = structuredClone(conversations);
    (loop[0] as { mapping: Record<string, { parent: string | null }> }).mapping.root = { ...loop[0]?.mapping.root, parent: 'a3' };
    const missing = structuredClone(conversations);
    (missing[2] as { current_node: string }).current_node = 'nowhere';
    for (const file of [loop, missing]) {
      const res = await upload(erin, JSON.stringify(file));
      assert.equal(res.statusCode, 400);
      assert.match(res.json().error, /current_node/);
    }
    assert.equal((await chatsOf('erin@example.com')).length, 0);
  });
});

describe('export', () => {
  let alice: TestClient;
  let chatId: number;
  before(async () => {
    alice = await newUser('alice@example.com');
    chatId = await newChat(alice, w.modelId);
    await ask(alice, chatId, 'Hello *there*');
    await ask(alice, chatId, 'Second "question" </script>');
  });

  test('one chat as Markdown and as JSON, as a download with a safe file name', async () => {
    await alice.app.inject({
      method: 'PATCH',
      url: `/api/chats/${chatId}`,
      payload: { title: 'Ünïcode "quotes"\r\nX-Evil: 1 / ../../etc' },
      headers: { cookie: alice.cookieHeader(), 'x-csrf-token': alice.csrf },
    });
    const md = await alice.get(`/api/chats/${chatId}/export?format=md`);
    assert.equal(md.statusCode, 200);
    assert.equal(md.headers['content-type'], 'text/markdown; charset=utf-8');
    assert.equal(md.headers['content-disposition'], `attachment; filename="parley-chat-${chatId}-unicode-quotes-x-evil-1-etc.md"`);
    assert.equal(md.headers['x-content-type-options'], 'nosniff');
    assert.match(md.body, /^# Ünïcode "quotes" X-Evil: 1 \/ \.\.\/\.\.\/etc\n/);
    assert.match(md.body, /## You · .*\n\nHello \*there\*\n/);
    assert.match(md.body, /## Fake echo · /);

    const json = await alice.get(`/api/chats/${chatId}/export?format=json`);
    assert.equal(json.statusCode, 200);
    assert.match(String(json.headers['content-disposition']), /^attachment; filename="parley-chat-\d+-[a-z0-9-]+\.json"$/);
    const file = json.json() as { format: string; chats: ExportedChat[] };
    assert.equal(file.format, EXPORT_FORMAT);
    assert.deepEqual(
      file.chats[0]?.turns.map((t) => [t.prompt, t.answer?.model, t.answer?.status]),
      [
        ['Hello *there*', 'Fake echo', 'complete'],
        ['Second "question" </script>', 'Fake echo', 'complete'],
      ],
    );
  });

  test('another user’s chat is a 404, and a format we do not write a 400', async () => {
    assert.equal((await w.user.get(`/api/chats/${chatId}/export?format=md`)).statusCode, 404);
    assert.equal((await alice.get(`/api/chats/${chatId}/export?format=pdf`)).statusCode, 400);
    assert.equal((await alice.get(`/api/chats/${chatId}/export`)).statusCode, 400);
  });

  test('all of one’s chats, and only one’s own, streamed as one file', async () => {
    await newChat(w.user, w.modelId); // Bob's: never in Alice's file
    const res = await alice.get('/settings/export');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], undefined, 'streamed, not built whole');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="parley-chats-\d{4}-\d{2}-\d{2}\.json"$/);
    const file = res.json() as { chats: ExportedChat[] };
    const own = await chatsOf('alice@example.com');
    assert.equal(file.chats.length, own.length);
    assert.ok(file.chats.every((c) => c.turns.every((t) => !t.prompt.includes('Bob'))));
  });

  test('the export reads the chats a page at a time, each page after the previous one was handed on', async () => {
    const frank = await newUser('frank@example.com');
    for (let i = 0; i < 5; i++) await newChat(frank, w.modelId);
    const id = await idOf('frank@example.com');
    const sizes = [];
    for await (const page of pagesOfChatsForExport(db(), id, 2)) sizes.push(page.length);
    assert.deepEqual(sizes, [2, 2, 1]);
    const res = await frank.get('/settings/export');
    assert.equal((res.json() as { chats: unknown[] }).chats.length, 5);
  });
});

describe('round trip, atomicity, limits, statistics', () => {
  test('an export imported again gives the same chats: titles, prompts, answers, models and dates', async () => {
    const gina = await newUser('gina@example.com');
    const a = await newChat(gina, w.modelId);
    await ask(gina, a, 'One');
    await ask(gina, a, 'Two with `code`');
    const b = await newChat(gina, w.modelId);
    await ask(gina, b, 'Another chat');
    await newChat(gina, w.modelId); // an empty chat: skipped on the way back, and said so
    const exported = await exportAll(gina);
    assert.equal(exported.chats.length, 3);

    const hank = await newUser('hank@example.com');
    const res = await upload(hank, JSON.stringify(exported));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().message, '2 chats imported, 1 skipped: no messages (1).');
    const back = await exportAll(hank);
    const comparable = (chats: ExportedChat[]) => chats.filter((c) => c.turns.length > 0).map((c) => ({ ...c, imported: undefined }));
    assert.deepEqual(comparable(back.chats), comparable(exported.chats));
    assert.ok(back.chats.every((c) => c.imported));
  });

  test('imported chats do not count: statistics, limits and the admin’s prompt counts are unchanged; what is asked in them later counts', async () => {
    const ivan = await newUser('ivan@example.com');
    const before = await usageFingerprint();
    assert.equal((await upload(ivan, fixture)).statusCode, 200);
    assert.equal(await usageFingerprint(), before);
    const ivanId = await idOf('ivan@example.com');
    assert.deepEqual(await chatStats(db(), ivanId, 'UTC', { from: null, to: null }), [], 'nor in the per-chat statistics');

    // What is asked in an imported chat afterwards is usage like any other: one prompt, one answer.
    const [trip] = await chatsOf('ivan@example.com');
    await ask(ivan, trip?.idchat ?? 0, 'And Sintra?');
    const counted = await sql<{ nprompts: number; nresponses: number }>`
      SELECT sum(nprompts)::int AS nprompts, sum(nresponses)::int AS nresponses FROM chatbot_schema.usage_day_user WHERE idappuser = ${ivanId}`.execute(db());
    assert.deepEqual(counted.rows[0], { nprompts: 1, nresponses: 1 });
    const user = await db().selectFrom('chatbot_schema.app_user').select('nprompts').where('idappuser', '=', ivanId).executeTakeFirstOrThrow();
    assert.equal(user.nprompts, 1);
    const stats = await chatStats(db(), ivanId, 'UTC', { from: null, to: null });
    assert.deepEqual(
      stats.map((c) => [c.title, c.prompts, c.answers]),
      [['Trip to Lisbon', 1, 1]],
    );
  });

  test('a file whose 500th chat is bad imports nothing', async () => {
    const jane = await newUser('jane@example.com');
    const good = (n: number): ExportedChat => ({
      title: `Chat ${n}`,
      model: 'Fake echo',
      created_at: '2024-01-01T00:00:00.000Z',
      updated_at: '2024-01-01T00:00:00.000Z',
      imported: false,
      turns: [{ prompt: `Prompt ${n}`, created_at: '2024-01-01T00:00:00.000Z', answer: null }],
    });
    const chats: unknown[] = Array.from({ length: 600 }, (_, i) => good(i + 1));
    chats[499] = { ...good(500), turns: [{ prompt: 42, created_at: '2024-01-01T00:00:00.000Z' }] };
    const rowsBefore = await Promise.all(['chat', 'message', 'response'].map((t) => countRows(w.t.database, `chatbot_schema.${t}`)));
    const res = await upload(jane, JSON.stringify({ format: EXPORT_FORMAT, version: 1, chats }));
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error, /^Chat 500 \(“Chat 500”\) in the file: turns\.0\.prompt: .* Nothing was imported\.$/);
    assert.deepEqual(await Promise.all(['chat', 'message', 'response'].map((t) => countRows(w.t.database, `chatbot_schema.${t}`))), rowsBefore);

    // The same file with chat 500 mended imports all 600: the refusal was that chat's alone.
    chats[499] = good(500);
    const ok = await upload(jane, JSON.stringify({ format: EXPORT_FORMAT, version: 1, chats }));
    assert.equal(ok.json().imported, 600);
  });

  test('a chat the database refuses half-way through the writes leaves nothing of the file behind (one transaction)', async () => {
    const at = new Date('2024-01-01T00:00:00Z');
    const chats: ChatToImport[] = Array.from({ length: 600 }, (_, i) => ({
      title: `Chat ${i + 1}`,
      model: null,
      createdAt: at,
      updatedAt: at,
      turns: [{ prompt: i === 499 ? 'a NUL \u0000 the parser would have refused' : `Prompt ${i + 1}`, createdAt: at, answer: null }],
    }));
    const rowsBefore = await Promise.all(['chat', 'message'].map((t) => countRows(w.t.database, `chatbot_schema.${t}`)));
    await assert.rejects(storeImportedChats(db(), await idOf('jane@example.com'), chats));
    assert.deepEqual(await Promise.all(['chat', 'message'].map((t) => countRows(w.t.database, `chatbot_schema.${t}`))), rowsBefore);
  });

  test('bad, huge or malformed files get a 4xx and import nothing', async () => {
    const kim = await newUser('kim@example.com');
    const refusals: Array<[string, Buffer | string, number, RegExp]> = [
      ['not JSON', 'hello', 400, /not JSON/],
      ['not UTF-8', Buffer.from([0xff, 0xfe, 0x00]), 400, /not UTF-8/],
      ['another JSON', '{"hello":"world"}', 400, /neither a Parley export nor ChatGPT/],
      ['an empty list', '[]', 400, /holds no chats/],
      [
        'a NUL in a prompt',
        JSON.stringify({
          format: EXPORT_FORMAT,
          version: 1,
          chats: [{ title: 'x', created_at: '2024-01-01T00:00:00Z', turns: [{ prompt: 'a\u0000b', created_at: '2024-01-01T00:00:00Z' }] }],
        }),
        400,
        /NUL/,
      ],
      [
        'a date out of range',
        JSON.stringify({ format: EXPORT_FORMAT, version: 1, chats: [{ title: 'x', created_at: '+275760-09-13T00:00:00Z', turns: [] }] }),
        400,
        /not a date/,
      ],
      ['a later version', JSON.stringify({ format: EXPORT_FORMAT, version: 2, chats: [] }), 400, /version 2/],
      ['an empty file', '', 400, /Choose a file/],
      ['one byte too large (found while reading)', Buffer.alloc(IMPORT_MAX_BYTES + 1, 0x20), 413, /at most 32 MiB/],
      ['too large (told by Content-Length)', Buffer.alloc(IMPORT_MAX_BYTES + 100 * 1024, 0x20), 413, /at most 32 MiB/],
    ];
    for (const [what, bytes, status, message] of refusals) {
      const res = await upload(kim, bytes);
      assert.equal(res.statusCode, status, `${what}: ${res.body}`);
      assert.match(res.json().error, message, what);
    }
    const form = await kim.post('/settings/import', {}, { accept: 'application/json' });
    assert.equal(form.statusCode, 400, 'a form without a file');
    const noToken = await upload(kim, fixture, { token: null });
    assert.equal(noToken.statusCode, 403, 'the CSRF token is required');
    assert.equal((await chatsOf('kim@example.com')).length, 0);
  });

  test('the import goes to the account that sends it, never another', async () => {
    const before = (await chatsOf('bob@example.com')).length;
    const lee = await newUser('lee@example.com');
    assert.equal((await upload(lee, fixture)).statusCode, 200);
    assert.equal((await chatsOf('bob@example.com')).length, before);
    assert.equal((await chatsOf('lee@example.com')).length, 2);
  });
});
