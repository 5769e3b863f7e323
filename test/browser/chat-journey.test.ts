import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Cookie, Locator, Page } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { type BrowserApp, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * The chat as a user meets it, in Chromium, against the fake OpenAI-compatible server (src/llm/fake-llm-server.ts):
 * the directives in a prompt ([[slow:MS]], [[long:N]], [[fail]]) decide how it answers. The tests run in order and
 * build on each other: the admin connects the models, then one conversation goes through streaming, Stop, Retry,
 * a reload mid-answer, a failure, Shift+Enter, the phone layout, and finally rename and delete.
 */

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };

/** Polls `probe` (the database, the fake server) until it returns something truthy. */
async function until<T>(what: string, probe: () => Promise<T | false | null | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** The text as one line, whitespace collapsed. */
async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

function words(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}

function path(page: Page): string {
  return new URL(page.url()).pathname;
}

const turns = (page: Page) => page.locator('#chat-thread > .turn');
const lastTurn = (page: Page) => turns(page).last();
const lastAnswer = (page: Page) => lastTurn(page).locator('.turn-answer');
/** The last answer once it has reached `status`. */
const answerWith = (page: Page, status: string) => lastTurn(page).locator(`.turn-answer[data-status="${status}"]`);
const composerButton = (page: Page) => page.locator('#composer #send');

/** Send becomes Stop while an answer is being written, and back. */
async function composerButtonBecomes(page: Page, label: 'Send' | 'Stop'): Promise<void> {
  await page.locator(`#composer #send[aria-label="${label}"]`).waitFor();
}

/** The streamed (plain text) answer while it is being written. */
const STREAMING_TEXT = '#chat-thread > .turn:last-child .turn-answer[data-status="streaming"] .answer-streaming';

/**
 * Waits until the answer being written shows more than `longerThan` characters and returns what it shows then,
 * read in the page at that instant (so the answer was still streaming when it was read).
 */
async function streamedTextLongerThan(page: Page, longerThan: number): Promise<string> {
  const handle = await page.waitForFunction(
    ([selector, n]) => {
      const shown = document.querySelector(selector)?.textContent ?? '';
      return shown.length > n ? shown : false;
    },
    [STREAMING_TEXT, longerThan] as const,
  );
  return (await handle.jsonValue()) as string;
}

async function sendPrompt(page: Page, prompt: string): Promise<void> {
  const input = page.getByLabel('Message', { exact: true });
  await input.fill(prompt);
  await input.press('Enter');
}

async function responseIdOf(answer: Locator): Promise<number> {
  const id = Number(await answer.getAttribute('data-response-id'));
  assert.ok(Number.isInteger(id) && id > 0, `data-response-id of the answer: ${id}`);
  return id;
}

describe('chat journey in a browser', { skip: skipWithoutBrowser() }, () => {
  let llm: FakeLlm;
  let server: BrowserApp;
  let browser: Browser;
  /** The admin's session, signed in by the first test; the others start their page with it. */
  let session: Cookie[] = [];
  /** The chat of the streaming, stop, retry and reload steps. */
  let firstChatId = 0;
  let secondChatId = 0;

  const responseRow = (id: number) =>
    server.database.db
      .selectFrom('chatbot_schema.response')
      .select(['idresponse', 'idmessage', 'txstatus', 'txmarkdown'])
      .where('idresponse', '=', id)
      .executeTakeFirstOrThrow();
  const responsesOfMessage = (messageId: number) =>
    server.database.db
      .selectFrom('chatbot_schema.response')
      .select(['idresponse', 'txstatus', 'txmarkdown'])
      .where('idmessage', '=', messageId)
      .orderBy('idresponse')
      .execute();
  const chatRow = (id: number) =>
    server.database.db.selectFrom('chatbot_schema.chat').select(['idchat', 'txtitle']).where('idchat', '=', id).executeTakeFirst();

  async function signedInPage(t: TestContext, viewport?: { width: number; height: number }): Promise<Page> {
    assert.ok(session.length > 0, 'the first test signs the admin in');
    const page = await newPage(browser, t, viewport);
    page.setDefaultTimeout(10_000);
    await page.context().addCookies(session);
    return page;
  }

  before(async () => {
    [llm, server, browser] = await Promise.all([startFakeLlm(), startBrowserApp(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close(); // stops answers still being written before the model server goes away
    await llm?.close();
  });

  test('the first user registers and connects two models on the Models page', async (t) => {
    const page = await newPage(browser, t);
    page.setDefaultTimeout(10_000);
    await page.goto(`${server.baseUrl}/register`);
    await page.getByLabel('Name').fill(admin.name);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL('**/chat');
    // Without a model the chat says so and offers no composer.
    await page.getByRole('heading', { name: 'No models yet' }).waitFor();
    assert.equal(await page.locator('#composer').count(), 0);

    await page.locator('nav.navbar').getByRole('link', { name: 'Models', exact: true }).click();
    await page.waitForURL('**/admin/models');
    for (const [name, model] of [
      ['Fake echo', 'fake-echo'],
      ['Fake large', 'fake-large'],
    ] as const) {
      await page.getByLabel('Name').fill(name);
      await page.getByLabel('Base URL').fill(llm.baseUrl);
      await page.getByLabel('Model id').fill(model);
      assert.equal(await page.getByLabel('Enabled (users can pick it)').isChecked(), true);
      await page.getByRole('button', { name: 'Add model' }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: `Model “${name}” added.` })
        .waitFor();
    }
    const row = page.locator('tbody tr').filter({ hasText: 'Fake large' });
    assert.equal(await text(row.locator('td').nth(4)), 'Enabled');
    await row.getByRole('button', { name: 'Test connection' }).click();
    await page.getByRole('alert').filter({ hasText: '“Fake large” answered: 2 models offered (fake-echo, fake-large).' }).waitFor();

    session = await page.context().cookies();
  });

  test('a prompt streams token by token, ends as rendered Markdown, and the page becomes the chat', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat`);
    await page.getByRole('heading', { name: 'What can I help with?' }).waitFor();
    const picker = page.getByLabel('Model', { exact: true });
    assert.deepEqual(await picker.locator('option').allTextContents(), ['Fake echo', 'Fake large']);
    await picker.selectOption({ label: 'Fake large' });
    assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('placeholder'), 'Message Fake large…');
    assert.equal(await composerButton(page).isDisabled(), true, 'nothing to send yet');

    const requestsBefore = llm.requests;
    // The default answer of the fake server: "You said: …", a paragraph and a ```ts block, about 45 chunks 60 ms apart.
    await sendPrompt(page, 'Show me how to declare a typed constant in TypeScript and print it [[slow:60]]');
    await composerButtonBecomes(page, 'Stop');
    // The first prompt creates the chat (POST /api/chats), then leaves the composer.
    await page.waitForFunction(() => document.querySelector<HTMLTextAreaElement>('#prompt')?.value === '');

    // Tokens arrive progressively: the shown text grows while the answer is still being written.
    const early = await streamedTextLongerThan(page, 0);
    const later = await streamedTextLongerThan(page, early.length);
    assert.ok(later.startsWith(early), `${JSON.stringify(later)} continues ${JSON.stringify(early)}`);
    assert.equal(await lastAnswer(page).getAttribute('aria-busy'), 'true');
    await streamedTextLongerThan(page, 120); // a few lines in, for the picture
    await screenshot(page, 'chat-streaming');

    // Done: the plain text is replaced by the server's HTML, with a highlighted code block and its Copy button.
    const done = answerWith(page, 'complete');
    await done.waitFor();
    assert.equal(await done.getAttribute('aria-busy'), null);
    assert.equal(await text(done.locator('.markdown-body p').first()), 'You said: Show me how to declare a typed constant in TypeScript and print it');
    const code = done.locator('.markdown-body .code-block pre code.hljs.language-ts');
    assert.equal(await text(code), "const answer: number = 42; console.log('The answer is', answer);");
    assert.ok((await code.locator('span[class^="hljs-"]').count()) > 2, 'the code is highlighted');
    assert.equal(await text(done.locator('.code-block-lang')), 'ts');
    const copy = done.getByRole('button', { name: 'Copy' });
    await copy.waitFor();
    assert.match(await text(done.locator('.answer-meta')), /^Fake large · \d+\.\d s$/);
    await done.getByRole('button', { name: 'Regenerate' }).waitFor();
    await composerButtonBecomes(page, 'Send');
    assert.equal(llm.requests, requestsBefore + 1);
    assert.equal((llm.lastRequest as { model?: string }).model, 'fake-large', 'the picked model answered');

    // Copy puts the code on the clipboard (127.0.0.1 is a secure origin, so the Clipboard API is there).
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
    await copy.click();
    await done.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "const answer: number = 42;\nconsole.log('The answer is', answer);\n");

    // The page became the chat's own page, and the chat is in the sidebar, titled from the prompt.
    const match = /^\/chat\/(\d+)$/.exec(path(page));
    assert.ok(match, `the URL became /chat/<id>: ${page.url()}`);
    firstChatId = Number(match[1]);
    const title = 'Show me how to declare a typed constant in TypeScript and p…';
    const item = page.locator(`#chat-list .chat-item[data-chat-id="${firstChatId}"]`);
    assert.equal(await text(item.locator('.chat-link')), title);
    assert.equal(await item.getAttribute('class'), 'chat-item active');
    assert.equal(await text(page.locator('#chat-title')), title);
    assert.equal(await page.title(), `${title} · Parley`);
    assert.equal(await text(page.locator('#model-select option:checked')), 'Fake large', 'the header picker now switches this chat’s model');
    assert.equal(await page.locator('#chat-list-empty').isVisible(), false);
    assert.equal((await chatRow(firstChatId))?.txtitle, title, 'the server titled it the same way');
    await page.mouse.move(0, 0); // no hover effect in the screenshot
    await screenshot(page, 'chat-done');
  });

  test('Stop ends the answer with the text received so far', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat/${firstChatId}`);
    await sendPrompt(page, 'Write a long essay [[slow:40]] [[long:60]]');
    // The first turn lost its Regenerate button: only the last answer has one.
    await lastTurn(page).locator('.turn-answer[data-status="streaming"]').waitFor();
    assert.equal(await turns(page).first().getByRole('button', { name: 'Regenerate' }).count(), 0);

    const seen = await streamedTextLongerThan(page, 20);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    const stopped = answerWith(page, 'stopped');
    await stopped.waitFor();
    assert.equal(await text(stopped.locator('.answer-status')), 'Stopped You stopped this answer.');
    const shown = words(await text(stopped.locator('.markdown-body')));
    assert.deepEqual(shown.slice(0, words(seen).length), words(seen), 'the text seen before Stop is kept');
    assert.ok(shown.length < 60, `cut short: ${shown.length} of 60 words`);
    assert.match(await text(stopped.locator('.answer-meta')), /^Fake large · \d+\.\d s$/);
    await stopped.getByRole('button', { name: 'Retry' }).waitFor();
    await composerButtonBecomes(page, 'Send');

    const row = await responseRow(await responseIdOf(stopped));
    assert.equal(row.txstatus, 'stopped');
    assert.ok(row.txmarkdown, 'the partial answer is stored');
    assert.deepEqual(words(row.txmarkdown), shown, 'the page shows what is stored');
    await page.mouse.move(0, 0);
    await screenshot(page, 'chat-stopped');
  });

  test('Retry on the stopped answer writes a new one for the same message', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat/${firstChatId}`);
    const stopped = answerWith(page, 'stopped');
    const stoppedId = await responseIdOf(stopped);
    const { idmessage } = await responseRow(stoppedId);

    await stopped.getByRole('button', { name: 'Retry' }).click();
    await streamedTextLongerThan(page, 0);
    assert.equal(await turns(page).count(), 2, 'the answer is replaced, no new turn');
    const done = answerWith(page, 'complete');
    await done.waitFor();
    assert.equal(words(await text(done.locator('.markdown-body'))).length, 60);
    await done.getByRole('button', { name: 'Regenerate' }).waitFor();
    const newId = await responseIdOf(done);
    assert.notEqual(newId, stoppedId);

    const rows = await responsesOfMessage(idmessage);
    assert.deepEqual(
      rows.map((r) => [r.idresponse, r.txstatus]),
      [
        [stoppedId, 'stopped'],
        [newId, 'complete'],
      ],
    );
  });

  test('after a reload mid-answer the page shows the partial answer, then the finished one by itself', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat/${firstChatId}`);
    await sendPrompt(page, 'Tell me a long story [[slow:50]] [[long:100]]');
    await streamedTextLongerThan(page, 0);
    const responseId = await responseIdOf(lastAnswer(page));
    // The server stores the partial answer about once a second; reload once it has.
    await until('the partial answer to be stored', async () => {
      const row = await responseRow(responseId);
      return row.txstatus === 'streaming' && words(row.txmarkdown ?? '').length > 3;
    });

    await page.reload();
    // Straight from the server (the page's first poll comes a second later): the text so far, still being written.
    const answer = lastAnswer(page);
    assert.equal(await answer.getAttribute('data-status'), 'streaming');
    const partial = (await answer.locator('.answer-streaming').textContent()) ?? '';
    assert.ok(words(partial).length > 3 && words(partial).length < 100, `partial answer after reload: ${JSON.stringify(partial)}`);
    await composerButtonBecomes(page, 'Stop'); // the answer can still be stopped
    // The earlier turns are rendered by the server, code block and Copy button included.
    assert.equal(await turns(page).count(), 3);
    await turns(page).first().getByRole('button', { name: 'Copy' }).waitFor();

    // Polling brings more text, then the final answer, without a click.
    const more = await streamedTextLongerThan(page, partial.length);
    assert.ok(more.startsWith(partial));
    const done = answerWith(page, 'complete');
    await done.waitFor();
    assert.equal(words(await text(done.locator('.markdown-body'))).length, 100);
    assert.equal(await responseIdOf(done), responseId);
    await done.getByRole('button', { name: 'Regenerate' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /^(Regenerate|Retry)$/ }).count(), 1, 'only the last answer offers it');
    await composerButtonBecomes(page, 'Send');
  });

  test('a failing model shows an error with Retry, in words a user understands', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat`);
    await page.getByLabel('Model', { exact: true }).selectOption({ label: 'Fake echo' });
    await sendPrompt(page, 'Why is the sky blue? [[fail]]');
    const failed = answerWith(page, 'error');
    await failed.waitFor();
    secondChatId = Number(/^\/chat\/(\d+)$/.exec(path(page))?.[1]);
    assert.ok(secondChatId > firstChatId);

    const message = await text(failed.locator('.answer-status'));
    assert.equal(message, 'Error The model server had a problem (HTTP 500). Try again in a moment.');
    assert.doesNotMatch(message, /https?:|127\.0\.0\.1|\bat \S+:\d+|Error:|\{/, 'no URL, stack or raw upstream error');
    assert.equal(await failed.locator('.answer-meta').count(), 0);
    assert.equal(await page.locator('#chat-alert').isVisible(), false, 'the error belongs to the answer, not to the page');
    await failed.getByRole('button', { name: 'Retry' }).waitFor();
    await composerButtonBecomes(page, 'Send');
    await page.mouse.move(0, 0);
    await screenshot(page, 'chat-error');

    // Retry asks again (and fails again: the directive is in the prompt); a second row, the same single turn.
    const firstId = await responseIdOf(failed);
    await failed.getByRole('button', { name: 'Retry' }).click();
    const failedAgain = lastTurn(page).locator(`.turn-answer[data-status="error"]:not([data-response-id="${firstId}"])`);
    await failedAgain.waitFor();
    await failedAgain.getByRole('button', { name: 'Retry' }).waitFor();
    assert.equal(await turns(page).count(), 1);
    const { idmessage } = await responseRow(firstId);
    assert.deepEqual(
      (await responsesOfMessage(idmessage)).map((r) => r.txstatus),
      ['error', 'error'],
    );
  });

  test('Shift+Enter starts a new line; Enter sends both lines', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat/${secondChatId}`);
    const input = page.getByLabel('Message', { exact: true });
    const oneLine = (await input.boundingBox())?.height ?? 0;
    await input.pressSequentially('First line');
    await input.press('Shift+Enter');
    await input.pressSequentially('second line');
    assert.equal(await input.inputValue(), 'First line\nsecond line');
    assert.equal(await turns(page).count(), 1, 'nothing was sent');
    assert.ok(((await input.boundingBox())?.height ?? 0) > oneLine, 'the composer grows with its text');

    await input.press('Enter');
    const bubble = lastTurn(page).locator('.prompt-bubble');
    await answerWith(page, 'complete').waitFor();
    assert.equal(await turns(page).count(), 2);
    assert.equal(await bubble.textContent(), 'First line\nsecond line');
    const lineHeight = await bubble.evaluate((el) => Number.parseFloat(getComputedStyle(el).lineHeight));
    assert.ok(((await bubble.boundingBox())?.height ?? 0) > 2 * lineHeight, 'the prompt shows on two lines');
    assert.equal(await input.inputValue(), '');
  });

  test('on a phone the chat fits the screen and the chat list opens as a drawer', async (t) => {
    const page = await signedInPage(t, MOBILE);
    await page.goto(`${server.baseUrl}/chat/${firstChatId}`);
    await answerWith(page, 'complete').waitFor();
    await turns(page).first().locator('.code-block').scrollIntoViewIfNeeded();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.equal(overflow, 0, 'no horizontal scrolling');
    const chatList = page.getByRole('navigation', { name: 'Your chats' });
    assert.equal(await chatList.isVisible(), false, 'the chat list starts hidden');
    const composer = await page.locator('#composer').boundingBox();
    assert.ok(composer && composer.y + composer.height <= MOBILE.height, 'the composer is on screen');
    await screenshot(page, 'chat-mobile');

    await page.getByRole('button', { name: 'Show your chats' }).click();
    await page.locator('#chat-sidebar.show').waitFor();
    await chatList.getByRole('link', { name: 'Why is the sky blue? [[fail]]' }).waitFor();
    await screenshot(page, 'chat-mobile-sidebar');
  });

  test('chats are renamed and deleted from the sidebar', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat/${secondChatId}`);
    const second = page.locator(`#chat-list .chat-item[data-chat-id="${secondChatId}"]`);
    const first = page.locator(`#chat-list .chat-item[data-chat-id="${firstChatId}"]`);

    // Rename the open chat: the sidebar, the heading and the window title follow, and so does the database.
    await second.getByRole('button', { name: 'Rename chat' }).click();
    const renameDialog = page.getByRole('dialog', { name: 'Rename chat' });
    await renameDialog.waitFor();
    const titleInput = renameDialog.getByLabel('Title');
    assert.equal(await titleInput.inputValue(), 'Why is the sky blue? [[fail]]');
    await titleInput.fill('Sky colours');
    await renameDialog.getByRole('button', { name: 'Save' }).click();
    await renameDialog.waitFor({ state: 'hidden' });
    assert.equal(await text(second.locator('.chat-link')), 'Sky colours');
    assert.equal(await text(page.locator('#chat-title')), 'Sky colours');
    assert.equal(await page.title(), 'Sky colours · Parley');
    assert.equal((await chatRow(secondChatId))?.txtitle, 'Sky colours');

    // Delete another chat: its actions show on hover; the dialog names it.
    await first.hover();
    await first.getByRole('button', { name: 'Delete chat' }).click();
    const deleteDialog = page.getByRole('dialog', { name: 'Delete chat?' });
    await deleteDialog.waitFor();
    assert.equal(await text(deleteDialog.locator('#delete-chat-title')), 'Show me how to declare a typed constant in TypeScript and p…');
    await deleteDialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await first.waitFor({ state: 'detached' });
    await deleteDialog.waitFor({ state: 'hidden' });
    assert.equal(path(page), `/chat/${secondChatId}`, 'the open chat stays open');
    assert.equal(await chatRow(firstChatId), undefined);

    // Delete the open chat: back to a new chat, with an empty list.
    await second.getByRole('button', { name: 'Delete chat' }).click();
    await deleteDialog.waitFor();
    await deleteDialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/chat');
    await page.getByRole('heading', { name: 'What can I help with?' }).waitFor();
    await page.getByText('No chats yet. Your conversations will appear here.').waitFor();
    assert.equal(await chatRow(secondChatId), undefined);
    const left = await server.database.db.selectFrom('chatbot_schema.response').select('idresponse').execute();
    assert.deepEqual(left, [], 'the answers went with their chats');
  });

  test('Stop pressed while the first prompt is still creating the chat sends nothing', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat`);
    // Hold the chat creation back so that Stop is pressed while it is in flight.
    await page.route('**/api/chats', async (route) => {
      await sleep(800);
      await route.continue();
    });
    const before = await server.database.db.selectFrom('chatbot_schema.message').select('idmessage').execute();
    await sendPrompt(page, 'never mind [[slow:40]] [[long:60]]');
    await composerButtonBecomes(page, 'Stop');
    await composerButton(page).click();
    await composerButtonBecomes(page, 'Send');
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), 'never mind [[slow:40]] [[long:60]]', 'the prompt stays to edit or send');
    assert.equal(await turns(page).count(), 0);
    await sleep(300); // would be enough for a wrongly sent prompt to be stored
    const after = await server.database.db.selectFrom('chatbot_schema.message').select('idmessage').execute();
    assert.equal(after.length, before.length, 'no message was stored');
  });

  test('on a phone the model is switched from the chat header; each answer names the model that wrote it', async (t) => {
    const page = await signedInPage(t, MOBILE);
    await page.goto(`${server.baseUrl}/chat`);
    const picker = page.getByLabel('Model', { exact: true });
    await picker.selectOption({ label: 'Fake echo' });
    await sendPrompt(page, 'first, from echo');
    await answerWith(page, 'complete').waitFor();
    const chatId = Number(/^\/chat\/(\d+)$/.exec(path(page))?.[1]);
    assert.ok(chatId > 0);

    const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(`/api/chats/${chatId}`));
    await picker.selectOption({ label: 'Fake large' });
    assert.equal((await patched).status(), 200);
    assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('placeholder'), 'Message Fake large…');
    await sendPrompt(page, 'second, from large');
    await page.locator('#chat-thread > .turn:nth-child(2) .turn-answer[data-status="complete"]').waitFor();
    const models = () => page.locator('#chat-thread .answer-model').allTextContents();
    assert.deepEqual(await models(), ['Fake echo', 'Fake large']);
    const header = page.locator('.chat-header');
    assert.ok(await header.evaluate((h) => h.scrollWidth <= h.clientWidth), 'the header fits 390 px');
    await screenshot(page, 'chat-model-switch-phone');

    await page.reload();
    assert.deepEqual(await models(), ['Fake echo', 'Fake large'], 'the server says the same after a reload');
    assert.equal(await text(page.locator('#model-select option:checked')), 'Fake large');
  });

  test('the keyboard: Esc stops an answer, Send shows its focus, Ctrl+Shift+O opens a new chat', async (t) => {
    const page = await signedInPage(t);
    await page.goto(`${server.baseUrl}/chat`);
    await sendPrompt(page, 'stop me with Esc [[slow:40]] [[long:80]]');
    await streamedTextLongerThan(page, 0);
    await page.keyboard.press('Escape');
    await answerWith(page, 'stopped').waitFor();
    await composerButtonBecomes(page, 'Send');

    const input = page.getByLabel('Message', { exact: true });
    await input.fill('something');
    await input.press('Tab');
    const ring = await composerButton(page).evaluate((b) => (b === document.activeElement ? getComputedStyle(b).outlineStyle : 'not focused'));
    assert.equal(ring, 'solid', 'Send has a visible outline when reached with the keyboard');

    await page.keyboard.press('Control+Shift+O');
    await page.waitForURL((url) => url.pathname === '/chat');
    await page.getByRole('heading', { name: 'What can I help with?' }).waitFor();
  });
});
