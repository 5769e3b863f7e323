import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import jsQRModule from 'jsqr';
import type { Browser, Page } from 'playwright-core';
import { TOTP_STEP_S, totpCodeAt } from '../../src/auth/totp.ts';
import { type BrowserApp, launchBrowser, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

// jsqr is CommonJS whose types say `export default`: Node hands us module.exports (the function), TypeScript
// expects it under .default. Take whichever is there.
type DecodeQr = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR = ((jsQRModule as unknown as { default?: DecodeQr }).default ?? jsQRModule) as unknown as DecodeQr;

const user = { name: 'Tess Totp', email: 'tess@example.com', password: 'amber lighthouse at dusk' };

const pathOf = (page: Page) => new URL(page.url()).pathname;

/** The QR code as the browser shows it, read back through a canvas and decoded like a phone's camera would. */
async function decodeQrOnPage(page: Page): Promise<string> {
  const image = await page.evaluate(async () => {
    const img = document.querySelector<HTMLImageElement>('img[data-testid="totp-qr"]');
    if (!img) throw new Error('no QR image');
    if (!img.complete) await new Promise((resolve) => img.addEventListener('load', resolve, { once: true }));
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no canvas');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    return { width: data.width, height: data.height, pixels: Array.from(data.data) };
  });
  const decoded = jsQR(Uint8ClampedArray.from(image.pixels), image.width, image.height);
  assert.ok(decoded, 'the QR code decodes');
  return decoded.data;
}

async function signIn(page: Page): Promise<void> {
  await page.goto(new URL('/login', page.url()).toString());
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/login\/2fa/);
}

async function signOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login$/);
}

describe('TOTP journey in a browser', { skip: skipWithoutBrowser() }, () => {
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

  test('enrol from the QR code, sign in with a code, then once with a recovery code', async (t) => {
    const page = await newPage(browser, t);
    const context = page.context();
    const go = (p: string) => page.goto(`${server.baseUrl}${p}`);
    await go('/register');
    await page.getByLabel('Name').fill(user.name);
    await page.getByLabel('E-mail').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/chat$/);

    // Settings → two-factor authentication → set up.
    await page.locator('nav.navbar').getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(/\/settings$/);
    await screenshot(page, 'settings');
    await page.getByRole('link', { name: 'Manage two-factor authentication' }).click();
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await page.waitForURL(/\/settings\/2fa$/);

    const uri = new URL(await decodeQrOnPage(page));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(decodeURIComponent(uri.href.split('?')[0] ?? ''), 'otpauth://totp/Parley:tess@example.com');
    assert.equal(uri.searchParams.get('issuer'), 'Parley');
    const secret = uri.searchParams.get('secret') ?? '';
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const shown = ((await page.getByTestId('totp-secret').textContent()) ?? '').replace(/\s/g, '');
    assert.equal(shown, secret, 'the text for manual entry is the same secret');
    await screenshot(page, 'totp-enrolment');

    await page.getByLabel('Code', { exact: true }).fill(totpCodeAt(secret, Date.now()));
    await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
    const codesBlock = page.getByTestId('recovery-codes');
    await codesBlock.waitFor();
    const codes = ((await codesBlock.textContent()) ?? '').trim().split('\n');
    assert.equal(codes.length, 10);
    const download = page.getByRole('link', { name: 'Download as text' });
    assert.match((await download.getAttribute('href')) ?? '', /^data:text\/plain;charset=utf-8,/);
    // The copy button is shown by web/recovery-codes.ts (hidden without script) and puts the codes on the clipboard.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
    const copy = page.getByRole('button', { name: 'Copy' });
    await copy.click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal((await page.evaluate(() => navigator.clipboard.readText())).trim(), codes.join('\n'));
    await screenshot(page, 'totp-recovery-codes');

    // Sign out, sign in: the second step asks for the code.
    await signOut(page);
    await signIn(page);
    assert.match((await page.locator('.card').textContent()) ?? '', /not signed in until/);
    await screenshot(page, 'totp-second-step');
    // The code of the next step: the confirmation used the current one, and a code is accepted once.
    await page.getByLabel('Code from your authenticator app').fill(totpCodeAt(secret, Date.now() + TOTP_STEP_S * 1000));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(/\/chat$/);

    // A recovery code works once.
    await signOut(page);
    await signIn(page);
    await page.getByRole('link', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(codes[0] ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(/\/chat$/);
    assert.match((await page.locator('.alert').first().textContent()) ?? '', /recovery code, 9 left/);

    await signOut(page);
    await signIn(page);
    await page.getByRole('link', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(codes[0] ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('That code is not right, or it was used already.').waitFor();
    assert.equal(pathOf(page), '/login/2fa');
  });
});
