import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, Cookie, Locator, Page } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, registerThroughForm, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * Issue 16 item 8: a connection whose test fails must not become everyone's preselected model. An admin connects
 * one model to a dead port (its name sorts first) and one to the fake OpenAI-compatible server, tests both, sees
 * their health on the list, and a new user's chat starts on the working one; the admin then disables the broken
 * one from the list in one click. Then the list at phone width: no column off-screen, no page scroll sideways.
 * The confirm dialog (web/confirm.ts) and the stacked table (.table-stack in public/app.css) come from the admin
 * forms' work of the same issue 16: these steps need both.
 */

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const member = { name: 'Bob Member', email: 'bob@example.com', password: 'seven quiet lanterns' };
const BROKEN = 'Alpha offline';
const WORKING = 'Zeta echo';

async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

const modelRow = (page: Page, name: string) => page.locator('tbody tr').filter({ has: page.locator('td', { hasText: name }).first() });
const healthCell = (page: Page, name: string) => modelRow(page, name).locator('td[data-label="Health"]');

/** A URL on 127.0.0.1 where nothing listens: the port was free a moment ago and is closed again. */
async function deadPortUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}/v1`;
}

describe('model health in a browser', { skip: skipWithoutBrowser() }, () => {
  let llm: FakeLlm;
  let server: BrowserApp;
  let browser: Browser;
  let adminSession: Cookie[] = [];

  before(async () => {
    [llm, server, browser] = await Promise.all([startFakeLlm(), startBrowserApp(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await llm?.close();
  });

  test('a connection that fails its test is shown failing, is not preselected for a user, and is disabled in one click', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    page.setDefaultTimeout(10_000);
    await registerThroughForm(page, admin, server.baseUrl);
    await page.goto(`${server.baseUrl}/admin/models`);
    // A refused form is the same page again, the message beside the field, what was typed kept (item 5).
    await page.getByLabel('Name').fill(WORKING);
    await page.getByLabel('Base URL').fill('localhost:11434');
    await page.getByLabel('Model id').fill('fake-echo');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Add model' }).click(),
    ]);
    assert.equal(refused.status(), 400);
    await page.locator('#f-baseUrl-error').filter({ hasText: 'Use an http:// or https:// URL.' }).waitFor();
    assert.equal(await page.getByLabel('Name').inputValue(), WORKING);
    assert.equal(await page.getByLabel('Base URL').inputValue(), 'localhost:11434');
    for (const [name, baseUrl] of [
      [BROKEN, await deadPortUrl()],
      [WORKING, llm.baseUrl],
    ] as const) {
      await page.getByLabel('Name').fill(name);
      await page.getByLabel('Base URL').fill(baseUrl);
      await page.getByLabel('Model id').fill('fake-echo');
      await page.getByRole('button', { name: 'Add model' }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: `Model “${name}” added.` })
        .waitFor();
    }
    assert.match(await text(healthCell(page, BROKEN)), /Not tested/);

    await modelRow(page, BROKEN).getByRole('button', { name: 'Test connection' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: `Testing “${BROKEN}” failed` })
      .waitFor();
    const broken = await text(healthCell(page, BROKEN));
    assert.match(broken, /Failing/);
    assert.match(broken, /Test failed/);
    assert.match(broken, /Could not reach the model server/);
    assert.ok(await healthCell(page, BROKEN).locator('time[datetime]').count(), 'when it failed is shown');

    await modelRow(page, WORKING).getByRole('button', { name: 'Test connection' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: `“${WORKING}” answered` })
      .waitFor();
    assert.match(await text(healthCell(page, WORKING)), /OK/);
    adminSession = await page.context().cookies();

    // A new user's chat starts on the working model, although the broken one is still offered and sorts first.
    const bob = await newPage(browser, t, DESKTOP);
    await registerThroughForm(bob, member, server.baseUrl);
    const picker = bob.getByLabel('Model', { exact: true });
    assert.deepEqual(await picker.locator('option').allTextContents(), [BROKEN, WORKING]);
    assert.equal(await text(picker.locator('option:checked')), WORKING);

    // Delete asks first, naming the model (web/confirm.ts reads data-confirm); Cancel leaves it as it was.
    await modelRow(page, BROKEN).getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    assert.equal(await text(dialog.locator('p')), `Delete “${BROKEN}”? This cannot be undone.`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await modelRow(page, BROKEN).count(), 1);

    // One click on the list disables the broken model (it has no chats, so nothing to confirm).
    await modelRow(page, BROKEN).getByRole('button', { name: 'Disable' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: `“${BROKEN}” is disabled` })
      .waitFor();
    assert.equal(await text(modelRow(page, BROKEN).locator('td[data-label="Status"]')), 'Disabled');
    await bob.reload();
    assert.deepEqual(await bob.getByLabel('Model', { exact: true }).locator('option').allTextContents(), [WORKING]);
    await screenshot(page, 'admin-models-desktop');
  });

  test('at phone width the model list is stacked: actions on screen, no sideways scroll', async (t) => {
    assert.ok(adminSession.length > 0, 'the first test signs the admin in');
    const page = await newPage(browser, t, MOBILE);
    await page.context().addCookies(adminSession);
    await page.goto(`${server.baseUrl}/admin/models`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    const test = modelRow(page, WORKING).getByRole('button', { name: 'Test connection' });
    const box = await test.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= MOBILE.width, `Test connection is on screen: ${JSON.stringify(box)}`);
    const url = modelRow(page, WORKING).locator('td[data-label="Server"]');
    const urlBox = await url.boundingBox();
    assert.ok(urlBox && urlBox.height < 80, `the base URL takes at most a few lines: ${JSON.stringify(urlBox)}`);
    await screenshot(page, 'admin-models-mobile');
  });
});
