import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import type { Browser, Cookie, Page } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { pngImage } from '../image-fixtures.ts';
import { type BrowserApp, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * Files and images with a prompt, as a user meets them in Chromium (issue 21): the admin marks a model "Vision" on
 * its form; a user drops an image on the chat, attaches a file with the paperclip, sees both as chips, sends, and
 * the answer streams under the prompt's thumbnail and file chip, which the server serves after a reload. A file the
 * server would refuse is refused in the page already. Screenshots at 1280 and 390 px.
 */

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };
const PHOTO = pngImage(320, 200, { metadata: false });
const NOTES = '# Meeting notes\n\n- ship the attachments\n- ```code``` fences stay closed\n';

type WireMessage = { role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> };

/** Drops files on an element the way a drag from the desktop does (a DataTransfer built in the page). */
async function dropFiles(page: Page, selector: string, files: Array<{ name: string; type: string; base64: string }>): Promise<void> {
  const dataTransfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    return dt;
  }, files);
  await page.dispatchEvent(selector, 'dragenter', { dataTransfer });
  await page.locator('#drop-overlay').waitFor({ state: 'visible' });
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
}

describe('files and images in a browser', { skip: skipWithoutBrowser() }, () => {
  let llm: FakeLlm;
  let server: BrowserApp;
  let browser: Browser;
  let session: Cookie[] = [];
  let chatPath = '';

  before(async () => {
    [llm, server, browser] = await Promise.all([startFakeLlm({ chunkDelayMs: 15 }), startBrowserApp(), launchBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await llm?.close();
  });

  async function signedInPage(t: TestContext, viewport?: { width: number; height: number }): Promise<Page> {
    const page = await newPage(browser, t, viewport);
    page.setDefaultTimeout(10_000);
    await page.context().addCookies(session);
    return page;
  }

  test('the admin connects a model and marks it Vision on its form', async (t) => {
    const page = await newPage(browser, t);
    page.setDefaultTimeout(10_000);
    await page.goto(`${server.baseUrl}/register`);
    await page.getByLabel('Name').fill(admin.name);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL('**/chat');
    await page.goto(`${server.baseUrl}/admin/models`);
    await page.getByLabel('Name').fill('Fake vision');
    await page.getByLabel('Base URL').fill(llm.baseUrl);
    await page.getByLabel('Model id').fill('fake-echo');
    assert.equal(await page.getByLabel('Vision (takes images)').isChecked(), false, 'not ticked unless the admin says so');
    await page.getByLabel('Vision (takes images)').check();
    await page.getByRole('button', { name: 'Add model' }).click();
    await page.getByRole('alert').filter({ hasText: 'Model “Fake vision” added.' }).waitFor();
    await page.locator('tbody tr').filter({ hasText: 'Fake vision' }).getByText('Vision', { exact: true }).waitFor();
    session = await page.context().cookies();
  });

  test('an image dropped on the chat and a file from the paperclip show as chips, are sent, and the answer streams', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat`);

    await dropFiles(page, '#chat', [{ name: 'chart.png', type: 'image/png', base64: PHOTO.toString('base64') }]);
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach files' }).click();
    await (await chooser).setFiles([
      { name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from(NOTES) },
      { name: 'extra.txt', mimeType: 'text/plain', buffer: Buffer.from('not needed') },
    ]);
    const chips = page.locator('#pending-files .pending-file');
    await chips.nth(2).waitFor();
    assert.deepEqual(await chips.locator('.pending-file-name').allTextContents(), ['chart.png', 'notes.md', 'extra.txt']);
    assert.equal(await chips.first().locator('img.pending-file-thumb').isVisible(), true, 'the image chip shows a thumbnail');
    await page.getByRole('button', { name: 'Remove extra.txt' }).click();
    await chips.nth(2).waitFor({ state: 'detached' });

    // A file the server would refuse is refused here already: a "PNG" that is text.
    await dropFiles(page, '#chat', [{ name: 'fake.png', type: 'image/png', base64: Buffer.from('hello').toString('base64') }]);
    await page.locator('#chat-alert').filter({ hasText: 'fake.png is not a PNG, JPEG, WebP or GIF image.' }).waitFor();
    assert.equal(await chips.count(), 2);

    await page.getByLabel('Message', { exact: true }).fill('What do the chart and the notes say? [[slow:40]]');
    await screenshot(page, 'attachments-composer');
    // The upload's progress, as the bar shows it (XMLHttpRequest's upload events).
    await page.evaluate(() => {
      const box = document.getElementById('upload-progress')!;
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      new MutationObserver(() => seen.push(box.hidden ? 'hidden' : (box.querySelector('.progress')?.getAttribute('aria-valuenow') ?? ''))).observe(box, {
        attributes: true,
        subtree: true,
      });
    });
    await page.getByLabel('Message', { exact: true }).press('Enter');
    const turn = page.locator('#chat-thread > .turn').last();
    await turn.locator('.turn-answer[data-status="streaming"]').waitFor();
    assert.equal(await chips.count(), 0, 'the composer is empty again');
    await turn.locator('.prompt-files .prompt-image img').waitFor();
    assert.equal(await turn.locator('.prompt-files .file-chip .file-chip-name').textContent(), 'notes.md');
    await turn.locator('.turn-answer[data-status="complete"]').waitFor();
    chatPath = new URL(page.url()).pathname;
    const progress = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    assert.ok(progress.includes('100'), `the bar reached 100 %: ${progress.join(', ')}`);
    assert.equal(progress.at(-1), 'hidden', 'and went away');

    const last = (llm.lastRequest as { messages: WireMessage[] }).messages.at(-1)!;
    assert.ok(Array.isArray(last.content));
    assert.match(last.content[0]?.text ?? '', /^File "notes\.md":\n````\n# Meeting notes/);
    assert.match(last.content[1]?.image_url?.url ?? '', /^data:image\/png;base64,/);
    await turn.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'attachments-desktop');
  });

  test('after a reload the server shows the thumbnail and the chip, and serves the files', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}${chatPath}`);
    const img = page.locator('.prompt-files .prompt-image img');
    await img.waitFor();
    await page.waitForFunction(() => (document.querySelector<HTMLImageElement>('.prompt-image img')?.naturalWidth ?? 0) === 320);
    const href = await page.locator('.prompt-files .file-chip').getAttribute('href');
    assert.match(href ?? '', /^\/api\/chats\/\d+\/attachments\/\d+$/);
    const res = await page.request.get(`${server.baseUrl}${href}`);
    assert.equal(res.headers()['content-type'], 'text/plain; charset=utf-8');
    assert.equal(await res.text(), NOTES);
    await page
      .locator('#chat-thread > .turn')
      .last()
      .evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'attachments-reloaded');

    // Settings shows what the files take.
    await page.goto(`${server.baseUrl}/settings`);
    const figure = page.locator('#attachment-storage');
    assert.match((await figure.textContent()) ?? '', /^2 attached files, 0\.\d MB in all\.$/);
    await screenshot(page, 'attachments-settings');
  });

  test('at phone width an image pasted into the message box (a screenshot) shows as a chip, and everything fits', async (t) => {
    const page = await signedInPage(t, MOBILE);
    await page.goto(`${server.baseUrl}${chatPath}`);
    await page.locator('.prompt-files .prompt-image img').waitFor();
    // A screenshot on the clipboard: Chromium calls it image.png, the page names it for when it was pasted.
    await page.locator('#prompt').evaluate((input, base64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], 'image.png', { type: 'image/png' }));
      input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, PHOTO.toString('base64'));
    await dropFiles(page, '#chat', [{ name: 'a-long-file-name-for-a-phone-screen.md', type: 'text/markdown', base64: Buffer.from(NOTES).toString('base64') }]);
    const names = page.locator('#pending-files .pending-file-name');
    await names.nth(1).waitFor();
    assert.match((await names.first().textContent()) ?? '', /^pasted-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.png$/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
    await page
      .locator('#chat-thread > .turn')
      .last()
      .evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'attachments-phone');
  });
});
