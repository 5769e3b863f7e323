import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { type BrowserApp, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const member = { name: 'Bob Member', email: 'bob@example.com', password: 'seven quiet lanterns' };

/** Bootstrap's dark body colour: proof that the stylesheet loaded and data-bs-theme="dark" took effect. */
const DARK_BODY = 'rgb(33, 37, 41)';

async function bodyBackground(page: Page): Promise<string> {
  return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

/** The text as one line, whitespace collapsed. */
async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

/** The top navbar; the chat page below it has links and buttons of its own. */
function navbar(page: Page): Locator {
  return page.locator('nav.navbar');
}

function path(page: Page): string {
  return new URL(page.url()).pathname;
}

async function register(page: Page, user: { name: string; email: string; password: string }): Promise<void> {
  await page.getByLabel('Name').fill(user.name);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('auth journey in a browser', { skip: skipWithoutBrowser() }, () => {
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

  test('the first visitor registers, becomes admin, signs out and back in', async (t) => {
    const page = await newPage(browser, t);

    // A visitor opening the site lands on the sign-in page, styled by Bootstrap's dark theme.
    await page.goto(`${server.baseUrl}/`);
    assert.equal(path(page), '/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await bodyBackground(page), DARK_BODY);
    await screenshot(page, 'auth-sign-in');

    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByRole('heading', { name: 'Create your account' }).waitFor();
    assert.equal(path(page), '/register');

    // A too-short password: the form comes back with the message under the password field, the rest kept.
    await register(page, { ...admin, password: 'short' });
    const passwordError = page.locator('#f-password-error');
    await passwordError.waitFor();
    assert.equal(await text(passwordError), 'Use at least 8 characters.');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-describedby'), 'f-password-error f-password-help');
    assert.equal(await page.getByLabel('Name').inputValue(), admin.name);
    assert.equal(await page.getByLabel('E-mail').inputValue(), admin.email);
    await screenshot(page, 'auth-register-error');

    // The first account is the administrator.
    await register(page, admin);
    await page.waitForURL('**/chat');
    const currentUser = page.getByTestId('current-user');
    assert.equal(await text(currentUser), `${admin.name} Admin`);
    for (const link of ['Chat', 'Models']) await navbar(page).getByRole('link', { name: link, exact: true }).waitFor();
    const welcome = page.getByRole('alert').filter({ hasText: 'you are the administrator' });
    await welcome.waitFor();
    await screenshot(page, 'auth-signed-in');
    // The flash closes (Bootstrap's script loaded and runs under the CSP).
    await welcome.getByRole('button', { name: 'Close' }).click();
    await welcome.waitFor({ state: 'detached' });

    await navbar(page).getByRole('button', { name: 'Sign out' }).click();
    const signedOut = page.getByRole('alert').filter({ hasText: 'You are signed out.' });
    await signedOut.waitFor();
    assert.equal(path(page), '/login');
    // The flash lines up with the sign-in card instead of spanning the window above it.
    const [flashBox, cardBox] = await Promise.all([signedOut.boundingBox(), page.locator('.card').boundingBox()]);
    assert.ok(flashBox && cardBox);
    assert.ok(
      Math.abs(flashBox.x - cardBox.x) < 1 && Math.abs(flashBox.width - cardBox.width) < 1,
      `flash ${JSON.stringify(flashBox)} card ${JSON.stringify(cardBox)}`,
    );
    assert.equal(await currentUser.count(), 0);
    await screenshot(page, 'auth-signed-out');

    await signIn(page, admin.email, 'not my password');
    await page.getByRole('alert').filter({ hasText: 'Wrong e-mail address or password.' }).waitFor();
    assert.equal(path(page), '/login');
    assert.equal(await page.getByLabel('E-mail').inputValue(), admin.email);
    await screenshot(page, 'auth-sign-in-wrong-password');

    await signIn(page, admin.email, admin.password);
    await page.waitForURL('**/chat');
    assert.equal(await text(currentUser), `${admin.name} Admin`);
  });

  test('a second visitor registers as a plain user and sees no admin links', async (t) => {
    const page = await newPage(browser, t);
    await page.goto(`${server.baseUrl}/register`);
    await register(page, member);
    await page.waitForURL('**/chat');
    await page.getByRole('alert').filter({ hasText: 'Your account is ready.' }).waitFor();
    assert.equal(await text(page.getByTestId('current-user')), member.name);
    await navbar(page).getByRole('link', { name: 'Chat', exact: true }).waitFor();
    for (const link of ['Users', 'Stats', 'Models']) assert.equal(await navbar(page).getByRole('link', { name: link, exact: true }).count(), 0, `${link} link`);
  });

  test('on a phone the sign-in card fits and the navbar menu opens', async (t) => {
    const page = await newPage(browser, t, MOBILE);
    await page.goto(`${server.baseUrl}/login`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.equal(overflow, 0, 'no horizontal scrolling');
    await screenshot(page, 'auth-sign-in-mobile');

    await signIn(page, member.email, member.password);
    await page.waitForURL('**/chat');
    const signOut = navbar(page).getByRole('button', { name: 'Sign out' });
    assert.equal(await signOut.isVisible(), false, 'the menu starts collapsed');
    await navbar(page).getByRole('button', { name: 'Menu' }).click();
    await page.locator('#nav.show').waitFor(); // Bootstrap adds .show when the opening transition ends
    assert.equal(await signOut.isVisible(), true);
    await screenshot(page, 'auth-signed-in-mobile-menu');
  });
});
