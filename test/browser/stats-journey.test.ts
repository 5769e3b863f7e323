import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Browser } from 'playwright-core';
import { type BrowserApp, DESKTOP, launchBrowser, MOBILE, newPage, registerThroughForm, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'copper kettle sings twice' };

/** Four models, a dozen users, five weeks of prompts and answers of every status (in SQL, through the rollup triggers). */
async function seedUsage(server: BrowserApp): Promise<void> {
  const db = server.database.db;
  await sql`
    INSERT INTO chatbot_schema.llm (txshortname) VALUES ('llama3'), ('gpt-4o-mini'), ('qwen2.5'), ('mistral');
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
    SELECT (ARRAY['Grace', 'Linus', 'Barbara', 'Dennis', 'Frances', 'Ken', 'Margaret', 'Edsger', 'Radia', 'Alan', 'Sophie', 'Niklaus'])[i], 'user' || i || '@example.com', ''
    FROM generate_series(1, 12) i;
  `.execute(db);
  await sql`
    INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle)
    SELECT u.idappuser, l.idllm, 'About ' || l.txshortname FROM chatbot_schema.app_user u CROSS JOIN chatbot_schema.llm l
    WHERE u.txemail LIKE 'user%' AND (u.idappuser * 7 + l.idllm) % 3 <> 0`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
    SELECT c.idchat, 'q', now() - make_interval(days => (c.idchat * 5 + g) % 35, secs => (g * 1931) % 80000)
    FROM chatbot_schema.chat c CROSS JOIN generate_series(1, 40) g WHERE g <= 8 + (c.idchat * 13) % 33`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
    SELECT m.idchat, m.idmessage, c.idllm, 'a', 'a',
      (ARRAY['complete', 'complete', 'complete', 'complete', 'complete', 'complete', 'error', 'stopped', 'complete', 'interrupted'])[1 + m.idmessage % 10],
      m.dtcreated, m.dtcreated + make_interval(secs => 0.2 + (c.idllm % 4) * 0.3 + (m.idmessage % 7) * 0.05),
      m.dtcreated + make_interval(secs => 0.8 + (c.idllm % 4) * 1.7 + (m.idmessage % 23) * 0.21),
      30 + m.idmessage % 200, 80 + m.idmessage % 600
    FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat`.execute(db);
}

describe('statistics page in a browser', { skip: skipWithoutBrowser() }, () => {
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

  test('an admin opens Stats from the navbar: tables, charts and ranges, at desktop and phone width', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/register`);
    await registerThroughForm(page, admin);
    await seedUsage(server);

    await page.locator('nav.navbar').getByRole('link', { name: 'Stats' }).click();
    await page.waitForURL('**/admin/stats');
    assert.match((await page.getByTestId('range-label').textContent()) ?? '', /last 30 days.*UTC/s);
    // Two charts, each with a line per model and a legend; their data as tables for screen readers.
    assert.equal(await page.locator('svg.stats-svg').count(), 2);
    assert.equal(await page.locator('svg.stats-svg').first().locator('polyline').count(), 4);
    assert.equal(await page.locator('.stats-legend').first().locator('li').count(), 4);
    assert.equal(await page.locator('figure.stats-chart .visually-hidden table').count(), 2);
    // The lines are coloured by the stylesheet (the CSP allows no inline style): not the default black.
    const stroke = await page
      .locator('svg.stats-svg polyline')
      .first()
      .evaluate((el) => getComputedStyle(el).stroke);
    assert.notEqual(stroke, 'none');
    assert.notEqual(stroke, 'rgb(0, 0, 0)');
    const tickFill = await page
      .locator('svg.stats-svg text.tick')
      .first()
      .evaluate((el) => getComputedStyle(el).fill);
    assert.notEqual(tickFill, 'rgb(0, 0, 0)', 'axis labels readable on the dark background');
    assert.ok((await page.getByTestId('models').locator('tbody tr').count()) >= 4);
    assert.ok((await page.getByTestId('users').locator('tbody tr').count()) >= 12);
    await screenshot(page, 'stats-desktop');

    await page.getByRole('link', { name: '7d', exact: true }).click();
    await page.waitForURL('**/admin/stats?range=7d');
    assert.match((await page.getByTestId('range-label').textContent()) ?? '', /last 7 days/);

    const phone = await newPage(browser, t, MOBILE);
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(`${server.baseUrl}/admin/stats`);
    assert.equal(await phone.locator('svg.stats-svg').count(), 2);
    // The wide tables scroll inside their own box; the page itself does not scroll sideways.
    await screenshot(phone, 'stats-phone');
    const overflow = await phone.evaluate(() => {
      const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1);
      return {
        by: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        wide: wide.slice(0, 3).map((el) => `${el.tagName}.${el.className}`),
      };
    });
    assert.ok(overflow.by <= 1, `page scrolls sideways by ${overflow.by}px: ${overflow.wide.join(', ')}`);
  });

  test('a reversed range shows the page again with the message beside the dates; every stats page fits a phone', async (t) => {
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/login`);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/chat');

    // Own usage is in the menu.
    await page.locator('nav.navbar').getByRole('link', { name: 'My usage' }).click();
    await page.waitForURL('**/settings/usage');
    await page.locator('nav.navbar').getByRole('link', { name: 'Stats' }).click();
    await page.waitForURL('**/admin/stats');

    await page.getByLabel('From').fill('2026-03-02');
    await page.getByLabel('To').fill('2026-03-01');
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('from=2026-03-02') && r.request().resourceType() === 'document'),
      page.getByRole('button', { name: 'Apply' }).click(),
    ]);
    assert.equal(answer.status(), 400);
    await page.getByTestId('range-error').waitFor();
    assert.match((await page.getByTestId('range-error').textContent()) ?? '', /From \(2026-03-02\) is after To \(2026-03-01\)/);
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Usage & inference statistics');
    assert.equal(await page.getByText('Request refused').count(), 0);
    // What was typed stays, the wrong field is marked and described by the message; fixing it shows the numbers.
    assert.equal(await page.getByLabel('From').inputValue(), '2026-03-02');
    assert.equal(await page.getByLabel('To').getAttribute('aria-describedby'), 'range-error');
    await screenshot(page, 'stats-refused-range-desktop');
    await page.getByLabel('To').fill('2026-03-09');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL('**/admin/stats?from=2026-03-02&to=2026-03-09');
    assert.match((await page.getByTestId('range-label').textContent()) ?? '', /^Showing 2026-03-02 to 2026-03-09; days/);

    const db = server.database.db;
    const grace = await sql<{ idappuser: number }>`SELECT idappuser FROM chatbot_schema.app_user WHERE txusername = 'Grace'`.execute(db);
    const phone = await newPage(browser, t, MOBILE);
    await phone.context().addCookies(await page.context().cookies());
    for (const [path, name] of [
      ['/admin/stats?range=30d', 'stats-phone-30d'],
      [`/admin/stats/users/${grace.rows[0]?.idappuser}?range=30d`, 'stats-user-chats-phone'],
      ['/settings/usage?range=30d', 'own-usage-phone'],
      ['/admin/stats?from=2026-03-02&to=2026-03-01', 'stats-refused-range-phone'],
    ] as const) {
      await phone.goto(`${server.baseUrl}${path}`);
      await screenshot(phone, name);
      const by = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(by <= 0, `${path} scrolls sideways by ${by}px at 390 px`);
    }
  });

  test('a group picked on the page: its members only, their use against its limits, at desktop and phone width', async (t) => {
    await sql`
      INSERT INTO chatbot_schema.user_group (txname, nprompts_per_day, ntokens_per_day, ntokens_per_month) VALUES ('Research', 20, NULL, 400000), ('Interns', 5, 20000, NULL);
      INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser)
      SELECT g.idgroup, u.idappuser FROM chatbot_schema.user_group g, chatbot_schema.app_user u
      WHERE g.txname = 'Research' AND u.txusername IN ('Grace', 'Linus', 'Barbara', 'Dennis')`.execute(server.database.db);
    const page = await newPage(browser, t, DESKTOP);
    await page.goto(`${server.baseUrl}/login`);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/chat');
    await page.goto(`${server.baseUrl}/admin/stats?range=90d`);
    await page.getByLabel('Group').selectOption({ label: 'Research' });
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL(/\/admin\/stats\?range=90d&group=\d+$/);
    await page.getByTestId('group-usage').waitFor();
    assert.deepEqual((await page.getByTestId('users').locator('tbody tr td:first-child').allTextContents()).sort(), ['Barbara', 'Dennis', 'Grace', 'Linus']);
    assert.equal(await page.locator('svg.stats-svg').count(), 1, 'the prompts chart; timing is for all users');
    assert.equal(await page.getByLabel('Group').inputValue(), page.url().split('group=')[1]);
    // Another range keeps the group.
    await page.getByRole('link', { name: '30d', exact: true }).click();
    await page.waitForURL(/range=30d&group=\d+$/);
    await screenshot(page, 'stats-group-desktop');

    const phone = await newPage(browser, t, MOBILE);
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(page.url());
    await screenshot(phone, 'stats-group-phone');
    const by = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(by <= 0, `the group's page scrolls sideways by ${by}px at 390 px`);
  });
});
