import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

const user = { name: 'Pia Passkey', email: 'pia@example.com', password: 'violet harbour in the rain' };

/**
 * Passkeys in Chromium with the DevTools Protocol's virtual authenticator (a platform authenticator with resident keys
 * and user verification that always says yes). WebAuthn needs a domain, so the page is opened at http://localhost:<port>:
 * the app's PUBLIC_URL is http://127.0.0.1:<port>, whose relying party is `localhost` (config-webauthn.ts).
 */
describe('passkey journey in a browser', { skip: skipWithoutBrowser() }, () => {
  let server: BrowserApp;
  let browser: Browser;
  let base: string;

  before(async () => {
    server = await startBrowserApp();
    base = server.baseUrl.replace('127.0.0.1', 'localhost');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  }

  const noSidewaysScroll = async (page: Page, what: string) =>
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${what} fits 390 px without sideways scroll`);

  /** How the newest session of the account was made. */
  async function signInMethod(): Promise<string | undefined> {
    const row = await server.database.db
      .selectFrom('chatbot_schema.session as s')
      .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 's.idappuser')
      .select('s.txsign_in_method as method')
      .where('u.txemail', '=', user.email)
      .orderBy('s.dtcreated', 'desc')
      .executeTakeFirst();
    return row?.method;
  }

  async function flash(page: Page): Promise<string> {
    return (await page.locator('.alert').first().textContent())?.trim() ?? '';
  }

  test('register on /settings/passkeys, sign out, sign in with the passkey button, use it at /login/2fa, remove it', async (t) => {
    const page = await newPage(browser, t);
    const { cdp, authenticatorId } = await virtualAuthenticator(page);
    await page.goto(`${base}/register`);
    await page.getByLabel('Name').fill(user.name);
    await page.getByLabel('E-mail').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/chat$/);

    // Settings → Passkeys → add one (the sign-in just now is the step-up's proof).
    await page.goto(`${base}/settings`);
    await page.getByRole('link', { name: 'Manage passkeys' }).click();
    await page.waitForURL(/\/settings\/passkeys$/);
    assert.match((await page.locator('[data-testid="passkey-recovery"]').textContent()) ?? '', /ask an administrator/);
    await page.getByLabel('Name for the new passkey').fill('Virtual key');
    await page.locator('[data-action="add-passkey"]').click();
    await page.waitForURL(/\/settings\/passkeys$/);
    await page.locator('[data-testid="passkey-row"]').waitFor();
    assert.match(await flash(page), /Passkey “Virtual key” added/);
    assert.equal(await page.locator('[data-testid="passkey-name"]').textContent(), 'Virtual key');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]?.isResidentCredential, true, 'a discoverable credential');
    await screenshot(page, 'passkeys-settings');
    await page.setViewportSize(MOBILE);
    await noSidewaysScroll(page, '/settings/passkeys');
    await screenshot(page, 'passkeys-settings-390');
    await page.setViewportSize(DESKTOP);

    // With the authenticator answering at once, the sign-in page's autofill offer (conditional mediation) signs in by itself.
    const presence = (enabled: boolean) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    const optionsAsked = () => page.waitForResponse((r) => r.url().endsWith('/login/passkey/options') && r.ok());
    const autofilled = page.waitForResponse((r) => new URL(r.url()).pathname === '/login/passkey' && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.equal((await autofilled).headers().location, '/chat');
    await page.waitForURL(/\/chat$/);
    assert.equal(await signInMethod(), 'passkey', 'the autofill offer signed in with the passkey');

    // Without presence, the autofill offer waits: the page as people see it, and the passkey button.
    await presence(false);
    let asked = optionsAsked();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login$/);
    await asked;
    assert.equal(await page.getByLabel('E-mail').getAttribute('autocomplete'), 'username webauthn');
    await screenshot(page, 'login-with-passkey');
    await page.setViewportSize(MOBILE);
    await noSidewaysScroll(page, '/login');
    await screenshot(page, 'login-with-passkey-390');
    await page.setViewportSize(DESKTOP);
    await presence(true);
    asked = optionsAsked();
    await page.locator('[data-action="passkey-sign-in"]').click();
    await asked; // the button's own request (it cancels the waiting autofill one)
    await page.waitForURL(/\/chat$/);
    assert.equal(await signInMethod(), 'passkey');

    // A password sign-in of an account with a passkey asks for it at /login/2fa.
    await presence(false);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login$/);
    await page.getByLabel('E-mail').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(/\/login\/2fa$/);
    await screenshot(page, 'second-factor-passkey');
    await presence(true);
    await page.locator('[data-action="passkey-second-factor"]').click();
    await page.waitForURL(/\/chat$/);
    assert.equal(await signInMethod(), 'password');

    // Remove it (the sign-in was the proof): the confirm dialog, then the list is empty.
    await page.goto(`${base}/settings/passkeys`);
    await page.locator('[data-action="remove-passkey"]').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await page.waitForURL(/\/settings\/passkeys$/);
    await page.locator('[data-testid="no-passkeys"]').waitFor();
    assert.match(await flash(page), /Passkey “Virtual key” removed/);

    // Opened under the loopback address, the page says where passkeys work instead of failing.
    await page.goto(`${server.baseUrl}/login`);
    await page.locator('[data-passkey-status]').filter({ hasText: 'Passkeys work at' }).waitFor();
    assert.equal(await page.locator('[data-action="passkey-sign-in"]').isDisabled(), true);
  });
});
