import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, newPage, registerThroughForm, screenshot, skipWithoutBrowser } from './harness.ts';
import { type LoggedApp, startLoggedApp } from './logged-app.ts';

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const member = { name: 'Bob Member', email: 'bob@example.com', password: 'seven quiet lanterns', newPassword: 'nine amber harbours hum' };

async function signIn(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState();
}

const pathOf = (page: Page) => new URL(page.url()).pathname;

describe('a password reset link in a browser', { skip: skipWithoutBrowser() }, () => {
  let server: LoggedApp;
  let browser: Browser;

  before(async () => {
    server = await startLoggedApp();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('an admin creates a link, it is opened in another browser, the new password signs in, the old one no longer does, and the token is in no log line', async (t) => {
    const page = await newPage(browser, t);
    await registerThroughForm(page, admin, server.baseUrl);
    const bob = await newPage(browser, t);
    await registerThroughForm(bob, member, server.baseUrl);

    // Users → Bob → Create a password reset link: the link is shown once.
    await page.locator('nav.navbar').getByRole('link', { name: 'Users' }).click();
    await page.locator('tbody tr', { hasText: member.email }).getByRole('link', { name: member.name }).click();
    await page.waitForURL(/\/admin\/users\/\d+$/);
    await page.getByRole('button', { name: 'Create a password reset link' }).click();
    const link = await page.getByLabel('Reset link').inputValue();
    const token = new URL(link).pathname.split('/').pop() ?? '';
    assert.match(link, new RegExp(`^${server.baseUrl}/reset-password/[A-Za-z0-9_-]{40,}$`));

    // A fresh browser (no cookies of this site), the way a link handed over in a chat is opened.
    const fresh = await newPage(browser, t);
    const sentHeaders: Array<{ url: string; headers: Record<string, string> }> = [];
    fresh.on('request', async (req) => sentHeaders.push({ url: req.url(), headers: await req.allHeaders() }));
    await fresh.goto(link);
    await fresh.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    // A refused password first: the page comes back with the message, still usable.
    await fresh.getByLabel('New password').fill('short');
    const refused = fresh.waitForResponse((res) => res.request().method() === 'POST');
    await fresh.getByRole('button', { name: 'Set password' }).click();
    const answer = await refused;
    assert.equal(
      answer.status(),
      400,
      `the form post answered ${answer.status()}: ${/<main[^>]*>([\s\S]*?)<\/main>/
        .exec(await answer.text())?.[1]
        ?.replace(/<[^>]+>|\s+/g, ' ')
        .trim()}`,
    );
    await fresh.locator('.invalid-feedback').first().waitFor();
    assert.equal(pathOf(fresh), new URL(link).pathname);
    await fresh.getByLabel('New password').fill(member.newPassword);
    await fresh.getByRole('button', { name: 'Set password' }).click();
    await fresh.waitForURL('**/login');
    assert.match((await fresh.locator('.alert').first().textContent()) ?? '', /Your password is set/);
    await screenshot(fresh, 'reset-password-done');

    // Only the page's own address holds the token: no Referer (a stylesheet, the bundle, the form post) carries it.
    for (const { url, headers } of sentHeaders) {
      assert.ok(!(headers.referer ?? '').includes(token), `the Referer of ${url} carries the token`);
    }

    // Bob's old session ended; the old password is refused, the new one signs in.
    await bob.goto(`${server.baseUrl}/chat`);
    assert.equal(pathOf(bob), '/login');
    await signIn(bob, server.baseUrl, member.email, member.password);
    assert.equal(pathOf(bob), '/login', 'the old password no longer works');
    await signIn(bob, server.baseUrl, member.email, member.newPassword);
    await bob.waitForURL('**/chat');

    // The link worked once.
    const again = await fresh.goto(link);
    assert.equal(again?.status(), 404);

    const log = server.log();
    assert.match(log, /reset-password/, 'the reset requests were logged');
    assert.ok(!log.includes(token), 'the reset token is in the log');
  });
});
