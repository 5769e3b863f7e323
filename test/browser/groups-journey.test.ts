import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/auth/passwords.ts';
import { addMembers, createGroup, setGroupLimits } from '../../src/groups/group-queries.ts';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { createUser, grantAdmin } from '../../src/users/user-queries.ts';
import { addModel } from '../chat-fixtures.ts';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/**
 * Issue 19 in a browser, for what inject cannot show: the composer's own refusal at a reached limit (the page's script
 * reads the 429 and shows its message by the composer, the prompt kept), the delete confirmation naming members and
 * models, and the group page, the model access form and the composer at phone width without sideways scroll.
 */
const PASSWORD = 'seven quiet lanterns';

async function signIn(page: Page, baseUrl: string, email: string): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL('**/chat');
}

const sideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

describe('groups, model access and limits in a browser', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;
  let llm: FakeLlm;
  let group = 0;
  let modelId = 0;

  before(async () => {
    llm = await startFakeLlm();
    server = await startBrowserApp();
    browser = await launchBrowser();
    const db = server.database.db;
    const hash = await hashPassword(PASSWORD);
    const admin = await createUser(db, { username: 'Ada Admin', email: 'ada@example.com', passwordHash: hash });
    await grantAdmin(db, admin.id);
    const bob = await createUser(db, { username: 'Bob Builder', email: 'bob@example.com', passwordHash: hash });
    modelId = await addModel(server.database, llm.baseUrl, 'Fake echo');
    group = (await createGroup(db, 'Interns', false)) ?? 0;
    await setGroupLimits(db, group, { prompts_per_day: 1, tokens_per_day: null, tokens_per_month: 200_000 });
    const others = await Promise.all(
      Array.from({ length: 12 }, (_, i) => createUser(db, { username: `Member ${i + 1}`, email: `m${i + 1}@example.com`, passwordHash: 'x' })),
    );
    await addMembers(db, group, [bob.id, ...others.map((o) => o.id)]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await llm?.close();
  });

  test('the composer at a reached limit says which limit and when it resets, and keeps the prompt', async (t) => {
    for (const viewport of [DESKTOP, MOBILE]) {
      const page = await newPage(browser, t, viewport, /\/api\/chats\/\d+\/messages$/);
      await signIn(page, server.baseUrl, 'bob@example.com');
      if (viewport === DESKTOP) {
        await page.locator('#prompt').fill('the one prompt of today');
        await page.locator('#prompt').press('Enter');
        await page.locator('.turn-answer[data-status="complete"]').waitFor();
      }
      await page.locator('#prompt').fill('one more, please');
      const refused = page.waitForResponse((res) => res.url().includes('/messages') || res.url().endsWith('/api/chats'));
      await page.locator('#prompt').press('Enter');
      await refused;
      await page.locator('#chat-alert:not([hidden])').waitFor();
      assert.match((await page.locator('#chat-alert-text').textContent()) ?? '', /reached your limit of 1 prompt a day\. It resets on .+ \(UTC\)\./);
      assert.equal(await page.locator('#prompt').inputValue(), 'one more, please', 'the refused prompt is given back to the composer');
      assert.ok((await sideways(page)) <= 0);
      await screenshot(page, `chat-limit-reached-${viewport.width}`);
    }
    assert.ok(modelId > 0);
  });

  test('the group page and the model access form, desktop and 390 px; deleting asks with the numbers', async (t) => {
    for (const viewport of [DESKTOP, MOBILE]) {
      const page = await newPage(browser, t, viewport);
      await signIn(page, server.baseUrl, 'ada@example.com');
      await page.goto(`${server.baseUrl}/admin/groups/${group}`);
      assert.match((await page.locator('[data-total]').textContent()) ?? '', /1–13 of 13/);
      assert.ok((await sideways(page)) <= 0, `no sideways scroll at ${viewport.width} px`);
      await screenshot(page, `group-page-${viewport.width}`);
      await page.goto(`${server.baseUrl}/admin/models/${modelId}/edit#access`);
      assert.ok((await sideways(page)) <= 0);
      await screenshot(page, `model-access-${viewport.width}`);
    }
    const page = await newPage(browser, t, DESKTOP);
    await signIn(page, server.baseUrl, 'ada@example.com');
    await page.goto(`${server.baseUrl}/admin/groups/${group}`);
    await page.getByRole('button', { name: 'Delete group' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match((await dialog.textContent()) ?? '', /Delete the group “Interns”\? Its 13 members leave it/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(page.url(), `${server.baseUrl}/admin/groups/${group}`);
  });
});
