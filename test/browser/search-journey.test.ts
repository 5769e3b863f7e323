import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/auth/passwords.ts';
import { createSession } from '../../src/auth/sessions.ts';
import { renderMarkdown } from '../../src/chat/markdown.ts';
import type { Db } from '../../src/db/database.ts';
import { createUser } from '../../src/users/user-queries.ts';
import { addModel } from '../chat-fixtures.ts';
import { DEFAULT_PASSWORD } from '../client.ts';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * Search as a user meets it (issue 21): Ctrl+K in the chat focuses the box over the chat list, Enter opens the results,
 * best first with the matched words marked (a prompt holding HTML shows as text), a result opens its chat; the same
 * page at phone width. Another user's chat with the same words never shows.
 */

/** A chat with answered prompts, written as the app writes them (the search rows follow by trigger). */
async function addChat(db: Db, userId: number, modelId: number, title: string, turns: [prompt: string, answer: string][]): Promise<number> {
  const chat = await sql<{ id: number }>`
    INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle) VALUES (${userId}, ${modelId}, ${title}) RETURNING idchat AS id`.execute(db);
  const chatId = chat.rows[0]?.id as number;
  for (const [prompt, answer] of turns) {
    const message = await sql<{ id: number }>`
      INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chatId}, ${prompt}) RETURNING idmessage AS id`.execute(db);
    await sql`
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, txstatus, tinf_start, tinf_end)
      VALUES (${chatId}, ${message.rows[0]?.id as number}, ${modelId}, ${answer}, ${renderMarkdown(answer)}, 'complete', now(), now())`.execute(db);
  }
  return chatId;
}

describe('search journey', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;
  let session = '';
  const chats = { best: 0, hostile: 0, other: 0, foreign: 0 };

  before(async () => {
    server = await startBrowserApp();
    browser = await launchBrowser();
    const db = server.database.db;
    const modelId = await addModel(server.database, 'http://127.0.0.1:9/v1');
    const passwordHash = await hashPassword(DEFAULT_PASSWORD);
    const user = await createUser(db, { username: 'Bob', email: 'bob@example.com', passwordHash });
    const stranger = await createUser(db, { username: 'Eve', email: 'eve@example.com', passwordHash });
    chats.other = await addChat(db, user.id, modelId, 'Weekend plans', [
      ['Where could we walk on Sunday?', 'The river path is flat and shaded; otters are sometimes seen near the old mill.'],
    ]);
    chats.hostile = await addChat(db, user.id, modelId, 'Pasted HTML', [
      ['Why does <img src=x onerror=alert(1)> break when otters appear in the alt text?', 'Because the attribute is never closed.'],
    ]);
    chats.best = await addChat(db, user.id, modelId, 'Otters of the northern rivers', [
      ['Tell me about otters', 'Otters are semi-aquatic mammals. **River otters** hunt fish and crayfish at dusk, and sea otters float on their backs.'],
      ['Do otters live in groups?', 'Sea otters rest in groups called rafts; river otters are more often alone.'],
    ]);
    chats.foreign = await addChat(db, stranger.id, modelId, 'Otters everywhere', [['otters otters otters', 'Otters!']]);
    session = await createSession(db, user.id, {});
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signedIn(t: Parameters<typeof newPage>[1], viewport: { width: number; height: number } = DESKTOP): Promise<Page> {
    const page = await newPage(browser, t, viewport);
    await page.context().addCookies([{ name: 'parley_session', value: session, url: server.baseUrl }]);
    return page;
  }

  test('Ctrl+K, a few words, Enter: the matching chats, best first, marked; one opens', async (t) => {
    const page = await signedIn(t);
    await page.goto(`${server.baseUrl}/chat`);
    const box = page.locator('#chat-search-q');
    assert.match((await box.getAttribute('title')) ?? '', /Ctrl\+K/);
    await page.keyboard.press('Control+k');
    await page.waitForFunction(() => document.activeElement?.id === 'chat-search-q');
    await page.keyboard.type('otters');
    await screenshot(page, 'search-box-desktop');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/chat\/search\?q=otters$/);

    const results = page.locator('#search-results > .search-result');
    const hrefs = await results.locator('a.search-result-title').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    assert.equal(hrefs[0], `/chat/${chats.best}`, 'the chat named for the word comes first');
    assert.deepEqual([...hrefs].sort(), [`/chat/${chats.best}`, `/chat/${chats.hostile}`, `/chat/${chats.other}`].sort());
    assert.ok(!hrefs.includes(`/chat/${chats.foreign}`), "another user's chat never shows");
    assert.equal(await results.first().locator('.search-result-title mark').first().textContent(), 'Otters');
    assert.ok((await page.locator('.search-passage mark').count()) >= 3, 'each passage marks the word');

    // The pasted HTML is text in the passage: no image element, the characters shown as typed.
    const hostile = results.filter({ has: page.locator(`a[href="/chat/${chats.hostile}"]`) });
    assert.match((await hostile.locator('.search-passage').textContent()) ?? '', /<img src=x onerror=alert\(1\)> break when otters/);
    assert.equal(await page.locator('#search-results img').count(), 0);

    await screenshot(page, 'search-results-desktop');
    // Ctrl+K on the results page goes back to its box, its words selected for a new search.
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await page.keyboard.press('Control+k');
    await page.waitForFunction(() => document.activeElement?.id === 'search-q');

    await results.first().locator('a.search-result-title').click();
    await page.waitForURL(new RegExp(`/chat/${chats.best}$`));
    await page.locator('#chat-thread .turn').first().waitFor();
    assert.equal(await page.locator('#chat-title').textContent(), 'Otters of the northern rivers');
  });

  test('phrases and exclusions; a search with nothing to look for says so', async (t) => {
    const page = await signedIn(t);
    await page.goto(`${server.baseUrl}/chat/search?q=${encodeURIComponent('"river otters" -crayfish')}`);
    assert.equal(await page.locator('#search-results > .search-result').count(), 0);
    assert.match((await page.locator('.search-note').textContent()) ?? '', /None of your chats match/);
    await page.goto(`${server.baseUrl}/chat/search?q=${encodeURIComponent('"river otters"')}`);
    assert.equal(await page.locator('#search-results > .search-result').count(), 1);
    await page.goto(`${server.baseUrl}/chat/search?q=${encodeURIComponent('?!')}`);
    assert.match((await page.locator('.search-note').textContent()) ?? '', /no words to search for/);
  });

  test('at phone width the results fit the screen', async (t) => {
    const page = await signedIn(t, MOBILE);
    await page.goto(`${server.baseUrl}/chat/search?q=otters`);
    await page.locator('#search-results').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    await screenshot(page, 'search-results-phone');
    // The chat list is a drawer on a phone: Ctrl+K (a keyboard on a tablet) opens the results page instead.
    await page.goto(`${server.baseUrl}/chat`);
    await page.keyboard.press('Control+k');
    await page.waitForURL(/\/chat\/search$/);
    await page.waitForFunction(() => document.activeElement?.id === 'search-q');
    await screenshot(page, 'search-empty-phone');
  });
});
