import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Browser } from 'playwright-core';
import {
  type BrowserApp,
  DESKTOP,
  launchBrowser,
  MOBILE,
  newPage,
  registerThroughForm,
  SCREENSHOT_DIR,
  screenshot,
  skipWithoutBrowser,
  startBrowserApp,
} from './harness.ts';

/*
 * Settings → Export and import, in Chromium: a refused file says why and imports nothing; ChatGPT's
 * conversations.json (the fixture with branches) imports, the summary shows, and the chats are in the list with
 * their badge; a chat's header menu downloads it as Markdown.
 */

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/chatgpt-conversations.json');
const user = { name: 'Nora Import', email: 'nora@example.com', password: 'copper kettle sings twice' };

describe('export and import in a browser', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;

  before(async () => {
    server = await startBrowserApp();
    browser = await launchBrowser();
    // A model to attach the imported chats to (nobody asks it anything here).
    await sql`INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('llama3', 'http://127.0.0.1:9/v1', 'llama3')`.execute(
      server.database.db,
    );
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('import ChatGPT’s file on Settings, see the summary and the chats; a bad file is refused with its reason', async (t) => {
    const page = await newPage(browser, t, DESKTOP, /\/settings\/import$/);
    await registerThroughForm(page, user, server.baseUrl);
    await page.goto(`${server.baseUrl}/settings`);
    const card = page.locator('#transfer');
    await card.scrollIntoViewIfNeeded();
    await card.screenshot({ path: path.join(SCREENSHOT_DIR, 'import-settings-desktop.png') });

    // A file that is not JSON: the reason under the form, nothing imported, still on Settings.
    await page.locator('#import-file').setInputFiles({ name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('not json at all') });
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.locator('#import-error:not([hidden])').waitFor();
    assert.match((await page.locator('#import-error').textContent()) ?? '', /not JSON/);
    assert.equal(new URL(page.url()).pathname, '/settings');
    await card.screenshot({ path: path.join(SCREENSHOT_DIR, 'import-refused-desktop.png') });

    await page.locator('#import-file').setInputFiles(FIXTURE);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.waitForURL('**/chat');
    const flash = page.locator('.alert-success');
    assert.match(((await flash.textContent()) ?? '').trim(), /^2 chats imported, 1 skipped: no text messages \(1\)\.$/);
    const items = page.locator('#chat-list .chat-item');
    assert.deepEqual(await items.locator('.chat-link').allTextContents(), ['A question without an answer', 'Trip to Lisbon']);
    assert.equal(await items.locator('.chat-imported-badge').count(), 2);
    await screenshot(page, 'import-summary-desktop');

    await items.getByRole('link', { name: 'Trip to Lisbon' }).click();
    await page.waitForURL('**/chat/*');
    assert.equal(await page.locator('#chat-thread > .turn').count(), 2);
    assert.match((await page.locator('#chat-thread > .turn').first().textContent()) ?? '', /Day 1/);
    await screenshot(page, 'imported-chat-desktop');

    // The header's export menu downloads the chat as Markdown.
    await page.getByRole('button', { name: 'Export this chat' }).click();
    await page.getByRole('link', { name: 'Markdown (.md)' }).waitFor();
    await screenshot(page, 'export-menu-desktop');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Markdown (.md)' }).click()]);
    assert.match(download.suggestedFilename(), /^parley-chat-\d+-trip-to-lisbon\.md$/);
  });

  test('the same at phone width', async (t) => {
    const page = await newPage(browser, t, MOBILE);
    await page.goto(`${server.baseUrl}/login`);
    await page.getByLabel('E-mail').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/chat');
    await page.goto(`${server.baseUrl}/settings`);
    await page.locator('#transfer').scrollIntoViewIfNeeded();
    await page.locator('#transfer').screenshot({ path: path.join(SCREENSHOT_DIR, 'import-settings-phone.png') });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= MOBILE.width, `the page is ${width} px wide at ${MOBILE.width}`);
    await page.locator('#import-file').setInputFiles(FIXTURE);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.waitForURL('**/chat');
    assert.match((await page.locator('.alert-success').textContent()) ?? '', /2 chats imported/);
    await screenshot(page, 'import-summary-phone');
    await page.getByRole('button', { name: 'Show your chats' }).click();
    await page.locator('#chat-sidebar.show').waitFor();
    assert.equal(await page.locator('#chat-list .chat-imported-badge').count(), 4);
    await screenshot(page, 'import-chats-phone');
  });
});
