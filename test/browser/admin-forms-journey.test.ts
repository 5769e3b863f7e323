import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/auth/passwords.ts';
import { createUser, grantAdmin } from '../../src/users/user-queries.ts';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, registerThroughForm, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/**
 * Issue 16, items 5 and 10 on the user-management pages: a refused form shows its own page again with the message
 * beside the control (never "Request refused … Go to the start page"), and destructive actions ask first in a dialog
 * that names who and what: Cancel leaves everything as it was, Confirm acts.
 */
const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const PASSWORD = 'seven quiet lanterns';

const rowOf = (page: Page, email: string) => page.locator('tbody tr', { hasText: email });

async function signIn(page: Page, email: string): Promise<void> {
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL('**/chat');
}

/** Every form post the page sends, to prove that a cancelled dialog sent none. */
function postsOf(page: Page): string[] {
  const posts: string[] = [];
  page.on('request', (req) => {
    if (req.method() === 'POST') posts.push(new URL(req.url()).pathname);
  });
  return posts;
}

describe('user-management forms in a browser: refusals and confirmations', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;
  const ids: Record<string, number> = {};

  const make = async (username: string, email: string, opts: { admin?: boolean } = {}) => {
    const { id } = await createUser(server.database.db, { username, email, passwordHash: await hashPassword(PASSWORD) });
    if (opts.admin) await grantAdmin(server.database.db, id);
    ids[email] = id;
    return id;
  };
  const state = async (email: string) => {
    const db = server.database.db;
    const user = await db
      .selectFrom('chatbot_schema.app_user')
      .select('is_active')
      .where('idappuser', '=', ids[email] as number)
      .executeTakeFirstOrThrow();
    const roles = await db
      .selectFrom('chatbot_schema.user_role')
      .select('idrole')
      .where('idappuser', '=', ids[email] as number)
      .execute();
    const sessions = await db
      .selectFrom('chatbot_schema.session')
      .select('idappuser')
      .where('idappuser', '=', ids[email] as number)
      .execute();
    return { active: user.is_active, roles: roles.length, sessions: sessions.length };
  };

  before(async () => {
    server = await startBrowserApp();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a refused form: the same page, the message beside the control, what was typed or chosen kept', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/register`);
    await registerThroughForm(page, admin);
    await make('Bob Builder', 'bob@example.com');
    await make('Erin Away', 'erin@example.com');

    // Bulk "Apply" with nobody ticked, "Sign out everywhere" chosen.
    await page.goto(`${server.baseUrl}/admin/users?status=active`);
    await page.getByLabel('With the selected users:').selectOption('sign-out-everywhere');
    const refused = page.waitForResponse((res) => res.url().endsWith('/admin/users/bulk'));
    await page.getByRole('button', { name: 'Apply' }).click();
    assert.equal((await refused).status(), 400);
    await page.locator('#bulk-error').waitFor();
    assert.equal(await page.locator('#bulk-error').textContent(), 'Select at least one user.');
    assert.equal(await page.getByRole('button', { name: 'Go to the start page' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Go to the start page' }).count(), 0);
    assert.equal(await page.getByLabel('With the selected users:').inputValue(), 'sign-out-everywhere', 'the chosen action is kept');
    assert.equal(await page.getByLabel('Status').inputValue(), 'active', 'the list view is kept');
    assert.equal(await page.getByLabel('With the selected users:').getAttribute('aria-describedby'), 'bulk-error');
    await screenshot(page, 'admin-users-bulk-refused');

    // A reset link for an account deactivated meanwhile (in another tab): the user's page again, the reason by the actions.
    await page.goto(`${server.baseUrl}/admin/users/${ids['erin@example.com']}`);
    await server.database.db
      .updateTable('chatbot_schema.app_user')
      .set({ is_active: false })
      .where('idappuser', '=', ids['erin@example.com'] as number)
      .execute();
    const resetRefused = page.waitForResponse((res) => res.url().endsWith('/reset-link'));
    await page.getByRole('button', { name: 'Create a password reset link' }).click();
    assert.equal((await resetRefused).status(), 400);
    await page.locator('#actions-error').waitFor();
    assert.match((await page.locator('#actions-error').textContent()) ?? '', /Reactivate the account first/);
    assert.match((await page.locator('h1').textContent()) ?? '', /Erin Away/);

    // Add a user with an e-mail that is taken: the form again with what was typed, the message beside the e-mail.
    await page.goto(`${server.baseUrl}/admin/users/new`);
    await page.getByLabel('Username').fill('Bobby Again');
    await page.getByLabel('E-mail', { exact: true }).fill('BOB@example.com');
    await page.getByLabel('Admin', { exact: true }).check();
    await page.getByLabel('Initial password', { exact: true }).fill('a long enough passphrase');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#f-email-error').waitFor();
    assert.equal(await page.locator('#f-email-error').textContent(), 'An account with this e-mail already exists.');
    assert.equal(await page.getByLabel('Username').inputValue(), 'Bobby Again');
    assert.equal(await page.getByLabel('E-mail', { exact: true }).inputValue(), 'BOB@example.com');
    assert.equal(await page.getByLabel('Admin', { exact: true }).isChecked(), true);
  });

  test('deactivate, demote, revoke and sign out ask first, naming who: Cancel changes nothing, Confirm acts', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/login`);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/chat');
    await make('Carol Clerk', 'carol@example.com', { admin: true });
    await make('Dan Driver', 'dan@example.com');
    await make('Fay Phone', 'fay@example.com');
    const fay = await newPage(browser, t, DESKTOP);
    await fay.goto(`${server.baseUrl}/login`);
    await signIn(fay, 'fay@example.com');
    const posts = postsOf(page);
    const dialog = page.getByRole('dialog');

    // The row's Deactivate: the question names Dan; Cancel (and Escape) post nothing.
    await page.goto(`${server.baseUrl}/admin/users`);
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Deactivate' }).click();
    await dialog.waitFor();
    assert.match((await dialog.textContent()) ?? '', /Deactivate Dan Driver \(dan@example\.com\)\?/);
    await screenshot(page, 'admin-users-confirm-deactivate');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Deactivate' }).click();
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(posts, [], 'nothing was posted');
    assert.equal((await state('dan@example.com')).active, true);
    assert.equal(new URL(page.url()).pathname, '/admin/users');
    // Confirm: deactivated.
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Deactivate' }).click();
    await dialog.getByRole('button', { name: 'Deactivate' }).click();
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Reactivate' }).waitFor();
    assert.equal((await state('dan@example.com')).active, false);
    // Reactivating asks nothing.
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Reactivate' }).click();
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Deactivate' }).waitFor();
    assert.equal((await state('dan@example.com')).active, true);

    // Demote Carol: cancelled, then confirmed.
    await rowOf(page, 'carol@example.com').getByRole('button', { name: 'Demote' }).click();
    assert.match((await dialog.textContent()) ?? '', /Demote Carol Clerk \(carol@example\.com\) to User\?/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await state('carol@example.com')).roles, 2);
    await rowOf(page, 'carol@example.com').getByRole('button', { name: 'Demote' }).click();
    await dialog.getByRole('button', { name: 'Demote' }).click();
    await rowOf(page, 'carol@example.com').getByRole('button', { name: 'Promote' }).waitFor();
    assert.equal((await state('carol@example.com')).roles, 1);

    // Bulk deactivate of two: the question says how many and whom.
    posts.length = 0;
    await rowOf(page, 'dan@example.com').getByRole('checkbox').check();
    await rowOf(page, 'carol@example.com').getByRole('checkbox').check();
    await page.getByLabel('With the selected users:').selectOption('deactivate');
    await page.getByRole('button', { name: 'Apply' }).click();
    await dialog.waitFor();
    const question = (await dialog.textContent()) ?? '';
    assert.match(question, /Deactivate 2 people: /);
    assert.match(question, /Carol Clerk \(carol@example\.com\)/);
    assert.match(question, /Dan Driver \(dan@example\.com\)/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(posts, []);
    assert.equal((await state('dan@example.com')).active, true);
    assert.equal(await rowOf(page, 'dan@example.com').getByRole('checkbox').isChecked(), true, 'the ticks stay after Cancel');
    await page.getByRole('button', { name: 'Apply' }).click();
    await dialog.getByRole('button', { name: 'Deactivate' }).click();
    await rowOf(page, 'dan@example.com').getByRole('button', { name: 'Reactivate' }).waitFor();
    assert.equal((await state('dan@example.com')).active, false);
    assert.equal((await state('carol@example.com')).active, false);

    // Fay's page: revoke her one session (cancelled, then confirmed), then sign out everywhere (asked too).
    await page.goto(`${server.baseUrl}/admin/users/${ids['fay@example.com']}`);
    posts.length = 0;
    await page.locator('[data-sessions]').getByRole('button', { name: 'Revoke' }).click();
    assert.match((await dialog.textContent()) ?? '', /Revoke this session of Fay Phone \(fay@example\.com\)/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(posts, []);
    assert.equal((await state('fay@example.com')).sessions, 1);
    await page.locator('[data-sessions]').getByRole('button', { name: 'Revoke' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('Session revoked').waitFor();
    assert.equal((await state('fay@example.com')).sessions, 0);
    await fay.goto(`${server.baseUrl}/login`);
    await signIn(fay, 'fay@example.com');
    await page.reload();
    posts.length = 0;
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    assert.match((await dialog.textContent()) ?? '', /Sign Fay Phone \(fay@example\.com\) out everywhere\?/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(posts, []);
    assert.equal((await state('fay@example.com')).sessions, 1);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await dialog.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByText('signed out everywhere').waitFor();
    assert.equal((await state('fay@example.com')).sessions, 0);

    // The user page's Deactivate, at phone width: the dialog fits and names Fay.
    await page.setViewportSize(MOBILE);
    await page.getByRole('button', { name: 'Deactivate' }).click();
    await dialog.waitFor();
    assert.match((await dialog.textContent()) ?? '', /Deactivate Fay Phone \(fay@example\.com\)\?/);
    const box = await dialog.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= MOBILE.width, `the dialog fits the phone (${JSON.stringify(box)})`);
    await screenshot(page, 'admin-user-confirm-phone');
    await dialog.getByRole('button', { name: 'Deactivate' }).click();
    await page.getByRole('button', { name: 'Reactivate' }).waitFor();
    assert.equal((await state('fay@example.com')).active, false);
  });

  test('without JavaScript the forms still post (no dialog to answer)', async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP, javaScriptEnabled: false });
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(`${server.baseUrl}/login`);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/chat');
    await make('Gus Plain', 'gus@example.com');
    await page.goto(`${server.baseUrl}/admin/users`);
    await rowOf(page, 'gus@example.com').getByRole('button', { name: 'Deactivate' }).click();
    await rowOf(page, 'gus@example.com').getByRole('button', { name: 'Reactivate' }).waitFor();
    assert.equal((await state('gus@example.com')).active, false);
  });
});
