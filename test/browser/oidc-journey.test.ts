import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { BASIC_CLIENT, CertifiedProvider } from '../certified-provider.ts';
import { type BrowserApp, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/**
 * "Sign in with Corp SSO" in Chromium through a certified OpenID provider library (oidc-provider, default settings):
 * its own login and consent pages, then into the chat. The journey a Keycloak or Authentik user makes.
 */
describe('sign-in with another OpenID provider in a browser', { skip: skipWithoutBrowser() }, () => {
  const provider = new CertifiedProvider();
  let server: BrowserApp;
  let browser: Browser;

  before(async () => {
    await provider.start();
    provider.accounts.set('olga', { email: 'olga@corp.test', email_verified: true, name: 'Olga Open' });
    server = await startBrowserApp(provider.env(BASIC_CLIENT));
    provider.redirectUri = `${server.baseUrl}/login/google/authorized`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await provider.stop();
  });

  test('at phone width: the button names the provider; its login and consent pages lead into the chat', async (t) => {
    const page = await newPage(browser, t, MOBILE);
    // The provider's development pages import a web font; this machine has no Internet (the pages are not ours).
    await page.route('https://fonts.googleapis.com/**', (route) => route.fulfill({ status: 200, contentType: 'text/css', body: '' }));
    await page.goto(`${server.baseUrl}/login`);
    const button = page.getByRole('link', { name: 'Sign in with Corp SSO' });
    await button.waitFor();
    assert.equal(await page.locator('img[src="/static/google-g.svg"]').count(), 0);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll');
    await screenshot(page, 'oidc-sign-in-390');

    await button.click();
    await page.locator('input[name="login"]').fill('olga');
    await page.locator('input[name="password"]').fill('anything');
    await page.locator('button[type="submit"]').click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${server.baseUrl}/chat`);
    assert.match((await page.locator('body').textContent()) ?? '', /administrator/);
    await screenshot(page, 'oidc-signed-in-390');
  });

  test('at desktop width the button sits where Google’s does', async (t) => {
    const page = await newPage(browser, t);
    await page.goto(`${server.baseUrl}/login`);
    await page.getByRole('link', { name: 'Sign in with Corp SSO' }).waitFor();
    await screenshot(page, 'oidc-sign-in-1280');
  });
});
