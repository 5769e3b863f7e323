import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { TestProvider } from '../google-provider.ts';
import { type BrowserApp, launchBrowser, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/** "Sign in with Google" in Chromium, through a real OpenID provider on loopback, into the chat. */
describe('Google sign-in journey in a browser', { skip: skipWithoutBrowser() }, () => {
  const provider = new TestProvider();
  let server: BrowserApp;
  let browser: Browser;

  before(async () => {
    await provider.start();
    provider.claims = { sub: 'g-journey', email: 'grace@example.com', email_verified: true, name: 'Grace Google' };
    server = await startBrowserApp(provider.env());
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await provider.stop();
  });

  test('the login page shows Google’s button; clicking it passes the provider and lands in the chat as the new Admin', async (t) => {
    const page = await newPage(browser, t);
    await page.goto(`${server.baseUrl}/login`);
    const button = page.getByRole('link', { name: 'Sign in with Google' });
    await button.waitFor();
    // The "G" mark loaded from our origin (a broken image has naturalWidth 0).
    const mark = page.locator('.gsi-button img');
    assert.equal(await mark.getAttribute('src'), '/static/google-g.svg');
    assert.ok((await mark.evaluate((img: HTMLImageElement) => img.naturalWidth)) > 0);
    await screenshot(page, 'google-sign-in');

    await button.click();
    await page.waitForURL(`${server.baseUrl}/chat`);
    assert.match((await page.locator('body').textContent()) ?? '', /administrator/);
    await screenshot(page, 'google-signed-in');

    const user = await server.database.db.selectFrom('chatbot_schema.app_user').select(['txusername', 'password']).executeTakeFirstOrThrow();
    assert.deepEqual(user, { txusername: 'Grace Google', password: null });
  });
});
