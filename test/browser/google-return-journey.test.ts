import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/auth/passwords.ts';
import { generateTotpSecret, TOTP_STEP_S, totpCodeAt } from '../../src/auth/totp.ts';
import { confirmEnrolment, startEnrolment, totpSecretBox } from '../../src/auth/totp-queries.ts';
import { createUser } from '../../src/users/user-queries.ts';
import { TEST_SECRET } from '../app.ts';
import { TestProvider } from '../google-provider.ts';
import { launchBrowser, newPage, screenshot, skipWithoutBrowser } from './harness.ts';
import { type LoggedApp, startLoggedApp } from './logged-app.ts';

/**
 * The pages a person reaches from outside the app, after the provider's redirect back: the account-link page and the
 * second step. The app is on `localhost` and the provider on 127.0.0.1, so, as with Google, the way back is a
 * cross-site redirect chain; each page's form must still post with an Origin the CSRF check accepts (issue 16: the
 * reset page did not). Their forms are posted from our own pages, with our Referrer-Policy.
 */
describe('back from the provider in a browser: the link page and the second step', { skip: skipWithoutBrowser() }, () => {
  const provider = new TestProvider();
  let server: LoggedApp;
  let browser: Browser;
  const box = totpSecretBox(TEST_SECRET);

  before(async () => {
    await provider.start();
    server = await startLoggedApp(provider.env({ TOTP_FOR_OAUTH: 'true' }), 'localhost');
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await provider.stop();
  });

  /** An account with a password and 2FA on (the code of the enrolment's step is used up). */
  async function accountWith2fa(email: string, password: string | null): Promise<{ id: number; secret: string }> {
    const { id } = await createUser(server.database.db, {
      username: email.split('@')[0] ?? 'x',
      email,
      passwordHash: password ? await hashPassword(password) : null,
    });
    const secret = generateTotpSecret();
    await startEnrolment(server.database.db, box, id, secret);
    assert.ok(await confirmEnrolment(server.database.db, box, id, totpCodeAt(secret, Date.now()), Date.now()));
    return { id, secret };
  }

  async function signInWithGoogle(page: Page): Promise<void> {
    await page.goto(`${server.baseUrl}/login`);
    await page.getByRole('link', { name: 'Sign in with Google' }).click();
  }

  async function secondStep(page: Page, secret: string): Promise<void> {
    await page.waitForURL((url) => url.pathname === '/login/2fa');
    // The next step's code: the enrolment used the current one, and a code counts once.
    await page.getByLabel('Code from your authenticator app').fill(totpCodeAt(secret, Date.now() + TOTP_STEP_S * 1000));
    await page.getByRole('button', { name: 'Verify' }).click();
  }

  test('an account with a password and 2FA links Google: the link page, then the second step, then the chat', async (t) => {
    const lena = { email: 'lena@example.com', password: 'linen lanterns glow softly' };
    const { secret } = await accountWith2fa(lena.email, lena.password);
    provider.claims = { sub: 'g-lena', email: lena.email, email_verified: true, name: 'Lena Link' };

    const page = await newPage(browser, t);
    await signInWithGoogle(page);
    await page.waitForURL('**/login/google/link');
    await screenshot(page, 'google-link-page');
    await page.getByLabel('Password').fill(lena.password);
    await page.getByRole('button', { name: 'Link Google and sign in' }).click();
    await secondStep(page, secret);
    await page.waitForURL('**/chat');
    assert.match((await page.locator('.alert').first().textContent()) ?? '', /Google is now linked/);
    const link = await server.database.db.selectFrom('chatbot_schema.oauth_identity').select('txsubject').executeTakeFirst();
    assert.equal(link?.txsubject, 'g-lena');
  });

  test('a Google account with 2FA (TOTP_FOR_OAUTH) passes the second step after the provider’s redirect', async (t) => {
    const gus = await accountWith2fa('gus@example.com', null);
    await server.database.db
      .insertInto('chatbot_schema.oauth_identity')
      .values({ txissuer: provider.issuer, txsubject: 'g-gus', idappuser: gus.id, txemail: 'gus@example.com' })
      .execute();
    provider.claims = { sub: 'g-gus', email: 'gus@example.com', email_verified: true, name: 'Gus' };

    const page = await newPage(browser, t);
    await signInWithGoogle(page);
    await secondStep(page, gus.secret);
    await page.waitForURL('**/chat');
    // The provider's code and state never reach the log.
    assert.doesNotMatch(server.log(), /[?&](code|state)=(?!\[redacted\])/);
  });
});
