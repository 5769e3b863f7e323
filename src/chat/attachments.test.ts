import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld } from '../../test/chat-fixtures.ts';
import type { TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';
import { gifImage, pngImage, SECRET } from '../../test/image-fixtures.ts';
import { IMAGE_CHARS } from './attachment-prompt.ts';
import { MAX_ATTACHMENTS, MAX_IMAGE_BYTES, MAX_TEXT_FILE_BYTES } from './attachment-rules.ts';

// Files and images with a prompt (issue 21): checked by content, stored with their message, sent to the model, served
// to their owner only, deleted with their chat, counted in Settings.

let w: ChatWorld;
let vision: number;
let textOnly: number;
before(async () => {
  w = await startChatWorld();
  vision = await addModel(w.t.database, w.llm.baseUrl, 'Fake vision');
  await db().updateTable('chatbot_schema.llm').set({ vision: true }).where('idllm', '=', vision).execute();
  textOnly = w.modelId;
});
after(() => w.close());

const db = () => w.t.database.db;
const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');

type WireMessage = { role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> };
const sentMessages = () => (w.llm.lastRequest as { messages: WireMessage[] }).messages;

function sendJson(client: TestClient, chatId: number, content: string, files: Array<{ name: string; data: Buffer | string }>) {
  return client.postJson(`/api/chats/${chatId}/messages`, { content, attachments: files.map((f) => ({ name: f.name, data: b64(f.data) })) });
}

/** A multipart/form-data body as a browser's FormData sends it. */
function multipart(fields: Array<{ name: string; value: string } | { name: string; filename: string; type?: string; data: Buffer }>) {
  const boundary = '----parleytest7MA4YWxkTrZu0gW';
  const parts = fields.map((f) => {
    const head =
      'filename' in f
        ? `Content-Disposition: form-data; name="${f.name}"; filename="${f.filename}"\r\nContent-Type: ${f.type ?? 'application/octet-stream'}\r\n\r\n`
        : `Content-Disposition: form-data; name="${f.name}"\r\n\r\n`;
    return Buffer.concat([Buffer.from(`--${boundary}\r\n${head}`), 'data' in f ? f.data : Buffer.from(f.value), Buffer.from('\r\n')]);
  });
  return { payload: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

function sendMultipart(client: TestClient, chatId: number, body: ReturnType<typeof multipart>) {
  return client.app.inject({
    method: 'POST',
    url: `/api/chats/${chatId}/messages`,
    payload: body.payload,
    headers: { 'content-type': body.contentType, 'x-csrf-token': client.csrf, cookie: client.cookieHeader() },
  });
}

async function stored() {
  return {
    messages: await countRows(w.t.database, 'chatbot_schema.message'),
    responses: await countRows(w.t.database, 'chatbot_schema.response'),
    attachments: await countRows(w.t.database, 'chatbot_schema.attachment'),
  };
}

type ApiTurn = { idmessage: number; attachments: Array<{ id: number; name: string; kind: string; media_type: string; bytes: number; url: string }> };
const turnsOf = async (client: TestClient, chatId: number) => ((await client.get(`/api/chats/${chatId}`)).json() as { turns: ApiTurn[] }).turns;

test('a text file and an image (JSON, base64) reach a vision model as a fenced block and an image part, stripped of metadata', async () => {
  const chatId = await newChat(w.user, vision);
  const code = 'const fence = "```";\nconsole.log(fence + "````");\n';
  const res = await sendJson(w.user, chatId, 'What do these show?', [
    { name: 'notes.ts', data: code },
    { name: 'photo.png', data: pngImage() },
  ]);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(parseSse(res.body).at(-1)?.event, 'done');

  const last = sentMessages().at(-1)!;
  assert.equal(last.role, 'user');
  assert.ok(Array.isArray(last.content), 'a prompt with an image is sent as parts');
  const [text, image] = last.content as Array<{ type: string; text?: string; image_url?: { url: string } }>;
  // The fence is longer than the file's longest run of backticks (four), so no line of the file can close it.
  assert.equal(text?.text, `File "notes.ts":\n\`\`\`\`\`\n${code}\`\`\`\`\`\n\nWhat do these show?`);
  assert.equal(image?.type, 'image_url');
  const dataUrl = image?.image_url?.url ?? '';
  assert.match(dataUrl, /^data:image\/png;base64,/);
  const sent = Buffer.from(dataUrl.split(',')[1]!, 'base64');
  assert.equal(sent.includes(SECRET), false, 'the model never sees the metadata');

  const [turn] = await turnsOf(w.user, chatId);
  assert.deepEqual(
    turn?.attachments.map((a) => [a.name, a.kind, a.media_type]),
    [
      ['notes.ts', 'text', 'text/plain'],
      ['photo.png', 'image', 'image/png'],
    ],
  );
  const row = await db().selectFrom('chatbot_schema.attachment').select('bcontent').where('txname', '=', 'photo.png').executeTakeFirstOrThrow();
  assert.deepEqual(Buffer.from(row.bcontent), sent, 'what is stored is what the model got: the stripped image');
});

test('the same by multipart/form-data (the page), and the files are served with a strict type, a disposition and nosniff', async () => {
  const chatId = await newChat(w.user, vision);
  const res = await sendMultipart(
    w.user,
    chatId,
    multipart([
      { name: 'content', value: 'Look' },
      { name: 'attachments', filename: 'page.html', type: 'text/html', data: Buffer.from('<script>alert(1)</script>') },
      { name: 'attachments', filename: 'anim.gif', type: 'image/gif', data: gifImage() },
    ]),
  );
  assert.equal(res.statusCode, 200, res.body);
  const [turn] = await turnsOf(w.user, chatId);
  const [html, gif] = turn!.attachments;

  const text = await w.user.get(html!.url);
  assert.equal(text.statusCode, 200);
  assert.equal(text.headers['content-type'], 'text/plain; charset=utf-8', 'an HTML file is served as text, never as HTML');
  assert.equal(text.headers['content-disposition'], `attachment; filename="page.html"; filename*=UTF-8''page.html`);
  assert.equal(text.headers['x-content-type-options'], 'nosniff');
  assert.match(String(text.headers['content-security-policy']), /sandbox/);
  assert.equal(text.body, '<script>alert(1)</script>');

  const image = await w.user.get(gif!.url);
  assert.equal(image.headers['content-type'], 'image/gif');
  assert.equal(image.headers['content-disposition'], `inline; filename="anim.gif"; filename*=UTF-8''anim.gif`);
  assert.equal(image.headers['x-content-type-options'], 'nosniff');
  assert.equal(image.rawPayload.includes(SECRET), false);

  const page = (await w.user.get(`/chat/${chatId}`)).body;
  assert.match(page, new RegExp(`<a class="prompt-image" href="${gif!.url}"`), 'the page shows the image as a thumbnail');
  assert.match(page, /<a class="file-chip" href="[^"]+" download="page.html"/, 'and the text file as a chip');
});

test('files are refused by their content, with a reason, before anything is stored', async () => {
  const chatId = await newChat(w.user, vision);
  const cases: Array<[string, Array<{ name: string; data: Buffer | string }>, RegExp]> = [
    ['a .png name with text inside', [{ name: 'cat.png', data: 'just text' }], /cat\.png is not a PNG, JPEG, WebP or GIF image/],
    ['a GIF named .txt', [{ name: 'notes.txt', data: gifImage() }], /notes\.txt holds an image \(image\/gif\), not text/],
    ['invalid UTF-8', [{ name: 'latin1.txt', data: Buffer.from([0x63, 0x61, 0x66, 0xe9]) }], /not a text file in UTF-8/],
    ['a NUL byte', [{ name: 'bin.dat', data: Buffer.from('a\0b') }], /contains NUL bytes/],
    ['a text file over 512 KiB', [{ name: 'big.txt', data: 'x'.repeat(MAX_TEXT_FILE_BYTES + 1) }], /big\.txt is too large .*at most 512 KiB/],
    ['a damaged image', [{ name: 'broken.png', data: pngImage().subarray(0, 60) }], /broken\.png is not a valid image/],
    [`${MAX_ATTACHMENTS + 1} files`, Array.from({ length: MAX_ATTACHMENTS + 1 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })), /Too many files: at most 10/],
  ];
  const before = await stored();
  for (const [what, files, reason] of cases) {
    const res = await sendJson(w.user, chatId, 'Here', files);
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
    assert.match((res.json() as { error: string }).error, reason, what);
  }
  // An image over 5 MiB, by multipart (the page's way): busboy stops reading it at the limit.
  const huge = Buffer.concat([pngImage(), Buffer.alloc(MAX_IMAGE_BYTES)]);
  const res = await sendMultipart(
    w.user,
    chatId,
    multipart([
      { name: 'content', value: 'Here' },
      { name: 'attachments', filename: 'huge.png', data: huge },
    ]),
  );
  assert.equal(res.statusCode, 400, res.body);
  assert.match((res.json() as { error: string }).error, /huge\.png is too large: files may have at most 5 MiB/);
  assert.deepEqual(await stored(), before, 'no prompt, answer or file was stored');
});

test('an image to a model not marked vision is 400 with the reason, and nothing is stored (not even the usage)', async () => {
  const chatId = await newChat(w.user, textOnly);
  const before = await stored();
  const prompts = async () =>
    (await db().selectFrom('chatbot_schema.app_user').select('nprompts').where('txemail', '=', 'bob@example.com').executeTakeFirstOrThrow()).nprompts;
  const promptsBefore = await prompts();
  const res = await sendJson(w.user, chatId, 'What is this?', [{ name: 'photo.png', data: pngImage() }]);
  assert.equal(res.statusCode, 400);
  assert.match((res.json() as { error: string }).error, /Fake echo does not take images/);
  assert.deepEqual(await stored(), before);
  assert.equal(await prompts(), promptsBefore);
  // A text file is fine for any model.
  const ok = await sendJson(w.user, chatId, 'And this?', [{ name: 'a.md', data: '# Title' }]);
  assert.equal(ok.statusCode, 200, ok.body);
});

test('later prompts carry earlier files; a model without vision reads a note in place of an image; old files leave with old turns', async () => {
  const chatId = await newChat(w.user, vision);
  assert.equal(
    (
      await sendJson(w.user, chatId, 'first', [
        { name: 'a.txt', data: 'alpha' },
        { name: 'p.png', data: pngImage() },
      ])
    ).statusCode,
    200,
  );
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'second' })).statusCode, 200);
  const [first] = sentMessages();
  assert.ok(Array.isArray(first?.content));
  const parts = first.content as Array<{ type: string; text?: string }>;
  assert.equal(parts[0]?.text, 'File "a.txt":\n```\nalpha\n```\n\nfirst');
  assert.equal(parts[1]?.type, 'image_url');

  // Regenerate asks again with the prompt's own files.
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/regenerate`, {})).statusCode, 200);
  assert.equal(sentMessages().at(-1)?.content, 'second');

  // The chat moves to a model that does not take images: the old image becomes a note, the text file stays.
  const patched = await w.user.app.inject({
    method: 'PATCH',
    url: `/api/chats/${chatId}`,
    payload: { llm: textOnly },
    headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
  });
  assert.equal(patched.statusCode, 200);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'third' })).statusCode, 200);
  assert.equal(sentMessages()[0]?.content, 'File "a.txt":\n```\nalpha\n```\n\n[Image "p.png" not shown: this model does not take images.]\n\nfirst');
});

test('an image weighs IMAGE_CHARS against MAX_HISTORY_CHARS: turns with images leave the history whole, oldest first', async () => {
  const small = await startChatWorld({ MAX_HISTORY_CHARS: String(IMAGE_CHARS + 500) });
  try {
    await small.t.database.db.updateTable('chatbot_schema.llm').set({ vision: true }).execute();
    const chatId = await newChat(small.user, small.modelId);
    const send = (content: string, files: Array<{ name: string; data: Buffer }>) =>
      small.user.postJson(`/api/chats/${chatId}/messages`, { content, attachments: files.map((f) => ({ name: f.name, data: b64(f.data) })) });
    assert.equal((await send('one', [{ name: 'a.png', data: pngImage() }])).statusCode, 200);
    assert.equal((await send('two', [{ name: 'b.png', data: pngImage(6, 6) }])).statusCode, 200);
    const messages = (small.llm.lastRequest as { messages: WireMessage[] }).messages;
    assert.equal(messages.length, 1, 'the earlier turn with its image no longer fits beside this one');
    assert.ok(Array.isArray(messages[0]?.content), 'the prompt itself is always sent, image and all');
  } finally {
    await small.close();
  }
});

test("another user's file is 404, even under their own chat's id; the files go with their chat; Settings shows the storage", async () => {
  const chatId = await newChat(w.user, vision);
  assert.equal((await sendJson(w.user, chatId, 'mine', [{ name: 'secret.txt', data: 'top secret' }])).statusCode, 200);
  const [turn] = await turnsOf(w.user, chatId);
  const file = turn!.attachments[0]!;

  const intruder = await w.admin.get(file.url);
  assert.equal(intruder.statusCode, 404);
  assert.equal(intruder.body.includes('top secret'), false);
  const ownChat = await newChat(w.admin, vision);
  assert.equal((await w.admin.get(`/api/chats/${ownChat}/attachments/${file.id}`)).statusCode, 404);

  const figure = async (client: TestClient) => Number(/id="attachment-storage" data-bytes="(\d+)"/.exec((await client.get('/settings')).body)?.[1]);
  const mine = await db()
    .selectFrom('chatbot_schema.attachment as a')
    .innerJoin('chatbot_schema.message as m', 'm.idmessage', 'a.idmessage')
    .innerJoin('chatbot_schema.chat as c', 'c.idchat', 'm.idchat')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'c.idappuser')
    .select((eb) => eb.fn.sum<string>('a.nbytes').as('bytes'))
    .where('u.txemail', '=', 'bob@example.com')
    .executeTakeFirstOrThrow();
  const before = await figure(w.user);
  assert.equal(before, Number(mine.bytes));
  assert.equal(await figure(w.admin), 0, "the admin's figure counts only the admin's files");

  const deleted = await w.user.app.inject({
    method: 'DELETE',
    url: `/api/chats/${chatId}`,
    headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
  });
  assert.equal(deleted.statusCode, 204);
  assert.equal((await w.user.get(file.url)).statusCode, 404);
  const left = await db().selectFrom('chatbot_schema.attachment').select('idattachment').where('idattachment', '=', file.id).execute();
  assert.deepEqual(left, [], 'the file row went with its chat');
  assert.equal(await figure(w.user), before - file.bytes);
});
