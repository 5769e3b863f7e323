import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { linkIdentity } from '../src/auth/google-queries.ts';
import { createSession } from '../src/auth/sessions.ts';
import { sha256Hex } from '../src/crypto/tokens.ts';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { createUser } from '../src/users/user-queries.ts';
import { AuthorizationWorld, type Browser } from './authorization-world.ts';
import { addModel } from './chat-fixtures.ts';

/**
 * Every route that names an object of one user, asked by another (a user, and an admin: chats are private to admins
 * too), with a valid CSRF token and a body the route would accept: a chat's routes answer 404, exactly as for a chat
 * that does not exist, and nothing anywhere in the database changes. An answer's id is also tried through a chat it
 * does not belong to (the caller's own chat with another user's answer, and with the caller's answer of another chat).
 * The settings forms that take another user's session or Google identity must answer as for a made-up one.
 * Each url is then asked by its owner, who gets through: the ids name real objects, so the 404s came from ownership.
 *
 * Lines: [method, url, JSON or form body]. `{x}` is the owner's chat, `{rx}` its answer and `{mx}` its prompt; `{y1}`/`{ry1}`, `{y2}`/`{ry2}`
 * are two chats of the caller with an answer each; `{xsession}`, `{xsubject}` the owner's session and Google identity.
 */
type Line = [method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: Record<string, unknown>];

const chatRoutes: Line[] = [
  ['GET', '/chat/{x}'],
  ['GET', '/api/chats/{x}'],
  ['PATCH', '/api/chats/{x}', { title: 'Renamed by someone else' }],
  ['DELETE', '/api/chats/{x}'],
  ['POST', '/api/chats/{x}/messages', { content: 'A prompt in someone else’s chat' }],
  ['POST', '/api/chats/{x}/regenerate', {}],
  ['POST', '/api/chats/{x}/responses/{rx}/stop', {}],
  // The answer exists, the chat is the caller's own: the pair does not.
  ['POST', '/api/chats/{y1}/responses/{rx}/stop', {}],
  ['POST', '/api/chats/{y1}/responses/{ry2}/stop', {}],
  // A prompt's file: through its own chat, and through the caller's own chat (before the edit
  // lines: the owner's edit removes the prompt that carries it).
  ['GET', '/api/chats/{x}/attachments/{ax}'],
  ['GET', '/api/chats/{y1}/attachments/{ax}'],
  // After the stop lines: its owner's edit (below) removes the answer {rx}.
  ['POST', '/api/chats/{x}/messages/{mx}/edit', { content: 'An edit in someone else’s chat' }],
  // The message exists, the chat is the caller's own: the pair does not.
  ['POST', '/api/chats/{y1}/messages/{mx}/edit', { content: 'Another user’s message through my chat' }],
];

/** The made-up twin of each form: the same request naming an object nobody has. */
const settingsForms: Array<[line: Line, madeUp: Record<string, string>]> = [
  [['POST', '/settings/sessions/revoke', { session: '{xsession}' }], { session: 'f'.repeat(64) }],
  [
    ['POST', '/settings/google/unlink', { issuer: 'https://accounts.google.com', subject: '{xsubject}' }],
    { issuer: 'https://accounts.google.com', subject: 'nobody' },
  ],
];

/** Words only the owner's chat holds (its title; its prompt, which the fake model echoes in the answer). */
const OWNER_TITLE = 'Owner-only title 7f3a9c';
const OWNER_PROMPT = 'Owner-only prompt 51d2e0';

let world: AuthorizationWorld;
let llm: FakeLlm;
const ids: Record<string, string> = {};
let ownerBrowser: () => Promise<Browser>;

before(async () => {
  world = await AuthorizationWorld.start();
  llm = await startFakeLlm();
  const db = world.database.db;
  const modelId = await addModel(world.database, llm.baseUrl);
  const owner = (await createUser(db, { username: 'Owner', email: 'owner@example.com', passwordHash: null })).id;
  const ownerSession = await createSession(db, owner, {});
  ids.xsession = sha256Hex(ownerSession);
  ids.xsubject = 'owner-google-subject';
  await linkIdentity(db, owner, { issuer: 'https://accounts.google.com', subject: ids.xsubject }, 'owner@example.com');
  ownerBrowser = async () => withSession(await world.browser('anonymous'), await createSession(db, owner, {}));

  // Each chat with one complete turn, made through the API as its owner makes it.
  const chatWithAnswer = async (browser: () => Promise<Browser>, prompt = 'hello'): Promise<[string, string, string]> => {
    const created = await send(await browser(), 'POST', '/api/chats', { llm: modelId });
    assert.equal(created.statusCode, 201, created.body);
    const chatId = String((created.json() as { id: number }).id);
    const asked = await send(await browser(), 'POST', `/api/chats/${chatId}/messages`, { content: prompt });
    assert.match(asked.body, /event: done/, asked.body);
    const chat = (await send(await browser(), 'GET', `/api/chats/${chatId}`)).json() as {
      turns: Array<{ idmessage: number; response: { idresponse: number; status: string } }>;
    };
    assert.equal(chat.turns[0]?.response.status, 'complete');
    return [chatId, String(chat.turns[0]?.response.idresponse), String(chat.turns[0]?.idmessage)];
  };
  [ids.x, ids.rx, ids.mx] = await chatWithAnswer(ownerBrowser, OWNER_PROMPT);
  assert.equal((await send(await ownerBrowser(), 'PATCH', `/api/chats/${ids.x}`, { title: OWNER_TITLE })).statusCode, 200);
  const attached = await send(await ownerBrowser(), 'POST', `/api/chats/${ids.x}/messages`, {
    content: 'With a file',
    attachments: [{ name: 'owner.txt', data: Buffer.from(OWNER_PROMPT).toString('base64') }],
  });
  assert.match(attached.body, /event: done/, attached.body);
  const turns = ((await send(await ownerBrowser(), 'GET', `/api/chats/${ids.x}`)).json() as { turns: Array<{ attachments: Array<{ id: number }> }> }).turns;
  ids.ax = String(turns[1]?.attachments[0]?.id);
  ids.uid = String(world.ids.user);
  [ids.y1, ids.ry1] = await chatWithAnswer(() => world.browser('user'));
  [ids.y2, ids.ry2] = await chatWithAnswer(() => world.browser('user'));
});
after(async () => {
  await world.close();
  await llm.close();
});

function withSession(browser: Browser, session: string): Browser {
  return { cookies: { ...browser.cookies, parley_session: session }, csrf: browser.csrf };
}

const fill = (s: string) => s.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? `{${name}}`);

/** A request as the page's script or form sends it: the CSRF token in the header, the body as JSON (API) or a form. */
async function send(browser: Browser, method: Line[0], url: string, body?: Record<string, unknown>): Promise<LightMyRequestResponse> {
  // A fresh browser's session belongs to the identity it was made for; the token is bound to that session.
  const page = await world.app.inject({ method: 'GET', url: '/__authorization-objects__', cookies: browser.cookies });
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] ?? browser.csrf;
  const headers: Record<string, string> = { 'x-csrf-token': csrf };
  let payload: string | undefined;
  if (body !== undefined) {
    const json = url.startsWith('/api/');
    headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    const filled = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === 'string' ? fill(v) : v]));
    payload = json ? JSON.stringify(filled) : new URLSearchParams({ ...(filled as Record<string, string>), _csrf: csrf }).toString();
  }
  return world.app.inject({ method, url: fill(url), cookies: browser.cookies, headers, payload });
}

const answer = (res: LightMyRequestResponse) => `${res.statusCode}${res.headers.location ? ` → ${res.headers.location}` : ''}`;

for (const caller of ['user', 'admin'] as const) {
  describe(`another user's objects, asked by ${caller === 'user' ? 'a user' : 'an admin'}: as if they did not exist, and nothing changes`, () => {
    for (const [method, url, body] of chatRoutes) {
      test(`${method} ${url} → 404`, async () => {
        const requestsBefore = llm.requests;
        const browser = await world.browser(caller);
        const before = await world.fingerprint();
        const res = await send(browser, method, url, body);
        assert.equal(res.statusCode, 404, `${fill(url)}: ${answer(res)} ${res.body.slice(0, 200)}`);
        assert.equal(await world.fingerprint(), before, 'the database changed');
        assert.equal(llm.requests, requestsBefore, 'the model was asked');
      });
    }
    for (const [[method, url, body], madeUp] of settingsForms) {
      test(`${method} ${url} with another user's ${Object.keys(madeUp).join(', ')}: the answer to a made-up one`, async () => {
        const twin = await send(await world.browser(caller), method, url, madeUp);
        const browser = await world.browser(caller);
        const before = await world.fingerprint();
        const res = await send(browser, method, url, body);
        assert.equal(answer(res), answer(twin));
        assert.ok(res.statusCode < 500);
        assert.equal(await world.fingerprint(), before, 'the database changed');
      });
    }
  });
}

describe("another user's chat is on none of one's own pages", () => {
  const pages: Record<'user' | 'admin', string[]> = {
    user: ['/chat', '/chat/{y1}', '/api/chats/{y1}', '/settings', '/settings/usage', '/settings/usage?format=csv'],
    admin: ['/chat'],
  };
  for (const caller of ['user', 'admin'] as const) {
    test(`${caller}: ${pages[caller].join(', ')}`, async () => {
      const owner = await send(await ownerBrowser(), 'GET', '/chat');
      assert.ok(owner.body.includes(OWNER_TITLE), "the owner's chat list shows the title (the words are the right ones to look for)");
      for (const url of pages[caller]) {
        const res = await send(await world.browser(caller), 'GET', url);
        assert.equal(res.statusCode, 200, url);
        for (const words of [OWNER_TITLE, OWNER_PROMPT]) assert.ok(!res.body.includes(words), `${url} shows ${words}`);
      }
    });
  }
});

describe("an admin's form naming a session of another user than the page's", () => {
  test("POST /admin/users/:id/sessions/revoke with the owner's session on the user's page: as for a made-up one", async () => {
    const url = '/admin/users/{uid}/sessions/revoke';
    const twin = await send(await world.browser('admin'), 'POST', url, { session: 'f'.repeat(64) });
    const browser = await world.browser('admin');
    const before = await world.fingerprint();
    const res = await send(browser, 'POST', url, { session: '{xsession}' });
    assert.equal(answer(res), answer(twin));
    assert.equal(await world.fingerprint(), before, 'the database changed');
  });
});

describe('the same urls, asked by their owners, get through (so the 404s above came from ownership)', () => {
  test('the owner of each object', async () => {
    const asOwner = async (url: string) => (url.includes('{y1}') ? world.browser('user') : ownerBrowser());
    // Read-only and harmless first, the destructive ones last.
    const order: Line[] = [
      ...chatRoutes.filter(([method, url]) => method !== 'DELETE' && !url.includes('{y1}')),
      ['POST', '/api/chats/{y1}/responses/{ry1}/stop', {}],
      ['DELETE', '/api/chats/{x}'],
    ];
    const problems: string[] = [];
    for (const [method, url, body] of order) {
      const res = await send(await asOwner(url), method, url, body);
      if (res.statusCode === 404 || res.statusCode >= 500 || res.statusCode === 401 || res.statusCode === 403)
        problems.push(`${method} ${url}: ${answer(res)}`);
    }
    assert.deepEqual(problems, []);
  });

  test('the owner revokes that session and is told that Google is their only way in (the identity is theirs)', async () => {
    const sessionRow = () =>
      world.database.db
        .selectFrom('chatbot_schema.session')
        .select('idsession')
        .where('idsession', '=', ids.xsession ?? '')
        .executeTakeFirst();
    assert.ok(await sessionRow(), "the owner's session is still there");
    const [[, revokeUrl, revokeBody], [, unlinkUrl, unlinkBody]] = settingsForms.map(([line]) => line) as [Line, Line];
    assert.equal(answer(await send(await ownerBrowser(), 'POST', revokeUrl, revokeBody)), '303 → /settings');
    assert.equal(await sessionRow(), undefined, 'revoked by its owner');
    assert.equal((await send(await ownerBrowser(), 'POST', unlinkUrl, unlinkBody)).statusCode, 409);
  });
});
