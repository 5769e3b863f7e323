import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { after, before, describe, type TestContext, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createSession } from '../../src/auth/sessions.ts';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { createUser } from '../../src/users/user-queries.ts';
import { addModel } from '../chat-fixtures.ts';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * A chat's instructions (its system prompt), editing a sent prompt, and regenerating one answer with another model,
 * as a user does them in Chromium against the fake model server. The tests build on one chat, in order.
 */

/** Where the screenshots a person looks at go too (outside the repository); test-results/ keeps its copy. */
const SCREENS = process.env.SCREENS_DIR;

describe('instructions, edit and resend, regenerate with another model', { skip: skipWithoutBrowser() }, () => {
  let llm: FakeLlm;
  let server: BrowserApp;
  let browser: Browser;
  let sessionToken = '';
  let chatId = 0;
  let otherModel = 0;

  const db = () => server.database.db;
  const messages = async () =>
    (await db().selectFrom('chatbot_schema.message').select('txmessage').where('idchat', '=', chatId).orderBy('idmessage').execute()).map((m) => m.txmessage);
  const turns = (page: Page) => page.locator('#chat-thread > .turn');
  const lastAnswerDone = (page: Page) => turns(page).last().locator('.turn-answer[data-status="complete"]').waitFor();

  async function shoot(page: Page, name: string): Promise<void> {
    const file = await screenshot(page, name);
    if (SCREENS) {
      mkdirSync(SCREENS, { recursive: true });
      copyFileSync(file, `${SCREENS}/${name}.png`);
    }
  }

  async function chatPage(t: TestContext, viewport: { width: number; height: number } = DESKTOP): Promise<Page> {
    const page = await newPage(browser, t, viewport);
    page.setDefaultTimeout(10_000);
    await page.context().addCookies([{ name: 'parley_session', value: sessionToken, url: server.baseUrl }]);
    await page.goto(`${server.baseUrl}/chat${chatId ? `/${chatId}` : ''}`);
    return page;
  }

  async function send(page: Page, prompt: string): Promise<void> {
    await page.getByLabel('Message', { exact: true }).fill(prompt);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await page.locator('#composer #send[aria-label="Stop"]').waitFor();
    await lastAnswerDone(page);
    await page.locator('#composer #send[aria-label="Send"]').waitFor();
  }

  before(async () => {
    [llm, server, browser] = await Promise.all([startFakeLlm(), startBrowserApp(), launchBrowser()]);
    await addModel(server.database, llm.baseUrl, 'Fake echo');
    otherModel = await addModel(server.database, llm.baseUrl, 'Fake other');
    const user = await createUser(db(), { username: 'Una', email: 'una@example.com', passwordHash: null });
    sessionToken = await createSession(db(), user.id, {});
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await llm?.close();
  });

  test('instructions typed before the first message are saved with the new chat and sent to the model', async (t) => {
    const page = await chatPage(t);
    const toggle = page.getByRole('button', { name: 'Instructions' });
    await toggle.click();
    const box = page.getByLabel('Instructions for this chat');
    await box.fill('Answer like a pirate.');
    await page.locator('#instructions-form').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Kept for the new chat').waitFor();
    await send(page, 'Where is the treasure? [[echo-history]]');
    chatId = Number(new URL(page.url()).pathname.split('/').at(-1));
    assert.ok(chatId > 0);
    const answer = await turns(page).last().locator('.answer-content').textContent();
    assert.match(answer ?? '', /system: Answer like a pirate\.\s+user: Where is the treasure\?/);
    const row = await db().selectFrom('chatbot_schema.chat').select('system_prompt').where('idchat', '=', chatId).executeTakeFirstOrThrow();
    assert.equal(row.system_prompt, 'Answer like a pirate.');
  });

  test('the instructions of a chat are shown and changed in its header panel', async (t) => {
    const page = await chatPage(t);
    const toggle = page.getByRole('button', { name: 'Instructions' });
    assert.equal(await toggle.getAttribute('data-set'), '', 'the button marks a chat with instructions');
    await toggle.click();
    await page.locator('#chat-instructions.show').waitFor();
    const box = page.getByLabel('Instructions for this chat');
    assert.equal(await box.inputValue(), 'Answer like a pirate.');
    await box.fill('Answer like a pirate.\nKeep it under three sentences.');
    await page.locator('#instructions-form').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved. The next answers follow them.').waitFor();
    await send(page, 'And the map? [[echo-history]]');
    await send(page, 'Thanks!');
    const answer = await turns(page).nth(1).locator('.answer-content').textContent();
    assert.match(answer ?? '', /^\s*History \(4 messages\):\s+system: Answer like a pirate\.\nKeep it under three sentences\.\s+user: Where/);
    await shoot(page, 'chat-instructions-desktop');
    const phone = await chatPage(t, MOBILE);
    await phone.getByRole('button', { name: 'Instructions' }).click();
    await phone.locator('#chat-instructions.show').waitFor(); // opened, not still sliding open
    await shoot(phone, 'chat-instructions-phone');
  });

  test('Edit a sent prompt, from the keyboard: the later turns leave, a new answer streams', async (t) => {
    const page = await chatPage(t);
    assert.equal(await turns(page).count(), 3);
    const first = turns(page).first();
    await first.getByRole('button', { name: 'Edit' }).focus();
    await page.keyboard.press('Enter');
    const editor = page.getByLabel('Edit your message');
    assert.equal(await editor.inputValue(), 'Where is the treasure? [[echo-history]]');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'prompt-editor-input', 'the editor has the focus');
    await shoot(page, 'chat-edit-desktop');

    // Cancel (Esc) leaves everything as it was.
    await page.keyboard.press('Escape');
    assert.equal(await editor.count(), 0);
    assert.equal(await turns(page).count(), 3);

    await first.getByRole('button', { name: 'Edit' }).click();
    await editor.fill('Where is the gold? [[echo-history]]');
    await page.getByRole('button', { name: 'Save & send' }).click();
    await turns(page).first().locator('.turn-answer[data-status="complete"]').waitFor();
    assert.equal(await turns(page).count(), 1, 'the later turns left the page');
    assert.equal(await turns(page).first().locator('.prompt-bubble').textContent(), 'Where is the gold? [[echo-history]]');
    assert.match(
      (await turns(page).first().locator('.answer-content').textContent()) ?? '',
      /History \(2 messages\):\s+system: Answer like a pirate\.\nKeep it under three sentences\.\s+user: Where is the gold\?/,
    );
    assert.deepEqual(await messages(), ['Where is the gold? [[echo-history]]'], 'and the chat');

    // The page after a reload says the same; the new prompt can be edited again.
    await page.reload();
    assert.equal(await turns(page).count(), 1);
    await turns(page).first().getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Edit your message').waitFor();

    const phone = await chatPage(t, MOBILE);
    await turns(phone).first().getByRole('button', { name: 'Edit' }).click();
    await phone.getByLabel('Edit your message').waitFor();
    await shoot(phone, 'chat-edit-phone');
  });

  test('Regenerate with another model: that answer names it, the chat keeps its own', async (t) => {
    const page = await chatPage(t);
    const answer = turns(page).last().locator('.turn-answer');
    await answer.getByRole('button', { name: 'Another model for this answer' }).click();
    const menu = answer.locator('.regenerate-models');
    await menu.getByRole('button', { name: 'Fake other' }).waitFor();
    await shoot(page, 'chat-regenerate-menu-desktop');
    await menu.getByRole('button', { name: 'Fake other' }).click();
    await answer.locator('[data-status="complete"] .answer-model, .answer-model').filter({ hasText: 'Fake other' }).waitFor();
    const rows = await db().selectFrom('chatbot_schema.response').select('idllm').where('idchat', '=', chatId).orderBy('idresponse').execute();
    assert.equal(rows.at(-1)?.idllm, otherModel);
    assert.equal((await page.locator('#model-select option:checked').textContent())?.trim(), 'Fake echo', 'the chat keeps its model');
  });
});
