import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, registerThroughForm, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const member = { name: 'Bob <b>Member</b>', email: 'bob@example.com', password: 'seven quiet lanterns' };

async function signIn(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

const path = (page: Page) => new URL(page.url()).pathname;
/** Destructive actions ask first (web/confirm.ts): answer the dialog with its action button. */
const confirm = (page: Page, button: string) => page.getByRole('dialog').getByRole('button', { name: button }).click();
const memberRow = (page: Page) => page.locator('tbody tr', { hasText: 'bob@example.com' });

describe('user management in a browser', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;

  before(async () => {
    server = await startBrowserApp();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('an admin promotes, demotes, deactivates and reactivates a user, revokes a session and reads the audit log', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/register`);
    await registerThroughForm(page, admin);
    const bob = await newPage(browser, t, DESKTOP);
    await bob.goto(`${server.baseUrl}/register`);
    await registerThroughForm(bob, member);

    // Users, from the navbar; the member's name is shown as text, not markup.
    await page.locator('nav.navbar').getByRole('link', { name: 'Users' }).click();
    await page.waitForURL('**/admin/users');
    assert.equal(await memberRow(page).locator('a', { hasText: 'Bob <b>Member</b>' }).count(), 1);
    assert.equal(await page.locator('tbody b').count(), 0);

    await memberRow(page).getByRole('button', { name: 'Promote' }).click();
    await page.waitForURL('**/admin/users');
    assert.match((await page.locator('.alert').first().textContent()) ?? '', /promoted to Admin/);
    assert.match((await memberRow(page).textContent()) ?? '', /Admin/);
    await bob.goto(`${server.baseUrl}/admin/users`);
    assert.equal(path(bob), '/admin/users', 'promoted: the admin page opens on the next request');

    await memberRow(page).getByRole('button', { name: 'Demote' }).click();
    await confirm(page, 'Demote');
    await memberRow(page).getByRole('button', { name: 'Promote' }).waitFor();
    const forbidden = await bob.goto(`${server.baseUrl}/admin/users`);
    assert.equal(forbidden?.status(), 403, 'demoted: admin pages are gone on the next request');

    // Search keeps the view: the action returns to the same filtered list.
    await page.getByLabel('Search username or e-mail').fill('BOB@');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/\/admin\/users\?q=BOB%40/);
    assert.equal(await page.locator('tbody tr').count(), 1);
    await memberRow(page).getByRole('button', { name: 'Deactivate' }).click();
    await confirm(page, 'Deactivate');
    // Back on the same filtered view (the URL already matched before the click, so wait for the new row state).
    await memberRow(page).getByRole('button', { name: 'Reactivate' }).waitFor();
    assert.match(page.url(), /\/admin\/users\?q=BOB%40$/);
    assert.match((await memberRow(page).textContent()) ?? '', /deactivated/);
    await screenshot(page, 'admin-users-desktop');

    await bob.goto(`${server.baseUrl}/chat`);
    assert.equal(path(bob), '/login', 'the deactivated user is out at their next request');
    await signIn(bob, member);
    assert.equal(path(bob), '/login', 'and cannot sign in again');

    await memberRow(page).getByRole('button', { name: 'Reactivate' }).click();
    await memberRow(page).getByRole('button', { name: 'Deactivate' }).waitFor();
    await bob.goto(`${server.baseUrl}/login`);
    await signIn(bob, member);
    await bob.waitForURL('**/chat');

    // The detail page: Bob's session, revoked.
    await memberRow(page).getByRole('link', { name: 'Bob <b>Member</b>' }).click();
    await page.waitForURL(/\/admin\/users\/\d+$/);
    assert.equal(await page.locator('[data-sessions] tbody tr').count(), 1);
    await screenshot(page, 'admin-user-detail-desktop');
    await page.setViewportSize(MOBILE);
    await screenshot(page, 'admin-user-detail-phone');
    await page.setViewportSize(DESKTOP);
    await page.locator('[data-sessions]').getByRole('button', { name: 'Revoke' }).click();
    await confirm(page, 'Revoke');
    await page.getByText('Session revoked').waitFor();
    assert.match((await page.locator('.alert').first().textContent()) ?? '', /Session revoked/);
    await bob.goto(`${server.baseUrl}/chat`);
    assert.equal(path(bob), '/login', 'the revoked session is out');

    // The audit log, newest first.
    await page.goto(`${server.baseUrl}/admin/audit`);
    const actions = await page.locator('[data-audit] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    assert.deepEqual(actions, ['revoke-session', 'reactivate', 'deactivate', 'demote', 'promote']);

    await page.goto(`${server.baseUrl}/admin/users`);
    await page.setViewportSize(MOBILE);
    await screenshot(page, 'admin-users-phone');
  });
});
