import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, type TestContext, test } from 'node:test';
import { sql } from 'kysely';
import type { Browser, Cookie, Page } from 'playwright-core';
import { type FakeLlm, startFakeLlm } from '../../src/llm/fake-llm-server.ts';
import { ATTACKER, corpusAsMarkdown, fitsNameField, XSS_CORPUS, type XssPayload } from '../xss-corpus.ts';
import { type BrowserApp, launchBrowser, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/*
 * The XSS corpus (test/xss-corpus.ts) through every place Parley shows text someone else chose: the model's answer
 * (while it streams, when it is done, after a reload), the prompt, chat titles, usernames, model names, the audit
 * log, the statistics pages and the CSV exports. Every page is loaded in Chromium with three detectors armed before
 * any page script: `__xss(n)` and `window.__pwned` report to the test (a binding, so it survives navigation), a
 * `securitypolicyviolation` listener reports what the CSP blocked, and every request to another origin is caught.
 * After each load the DOM is audited too (no on* attribute, no javascript:/data: URL, no frame, base, meta refresh,
 * foreign script or <style>; style attributes are left to the CSP listener, as the composer sets its height by script), and each payload must be visible as text: a payload dropped by a broken fixture fails.
 */

const admin = { email: 'ada@example.com', password: 'copper kettle sings twice' };
/** The admin's own name is a payload: it is on every page (navbar), in the audit log as the actor and in the stats. */
const adminPayload = XSS_CORPUS.find((p) => p.kind === 'img onerror') as XssPayload;
/** Through the chat's rename dialog; the first prompt (so the chat's automatic title) starts with another. */
const renamePayload = XSS_CORPUS.find((p) => p.kind === 'attribute breakout "') as XssPayload;
const promptTitlePayload = XSS_CORPUS.find((p) => p.kind === '</title> breakout') as XssPayload;
/** Columns of the seed schema: names and model names are VARCHAR(100); the forms take 50 and 100, no control characters. */
const NAME_COLUMN_MAX = 100;

/** Whitespace collapsed: HTML shows a tab or a newline as a space, and the forms trim. */
const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
/**
 * The payloads that try to leave the place a value is put in (an attribute, <title>, <textarea>, a raw-text or foreign
 * element): those get a page of their own on the pages that show one value each (a user, a model's form, a chat).
 * Every payload is on the list pages, which go through the same escaping.
 */
const breaksContext = (p: XssPayload) => /breakout|mXSS|polyglot|script tag|template|dangling/.test(p.kind);

interface Detected {
  kind: 'xss' | 'pwned' | 'csp' | 'foreign request';
  detail: string;
  url: string;
}

/** One RFC 4180 CSV → rows of cells (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    row.push(cell);
    cell = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') quoted = !quoted;
    else if (quoted) cell += c;
    else if (c === ',') endCell();
    else if (c === '\r' && text[i + 1] === '\n') {
      endCell();
      rows.push(row);
      row = [];
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) {
    endCell();
    rows.push(row);
  }
  return rows;
}

/**
 * In the page: everything that could run script or fetch another origin, whatever the sanitizer let through.
 * Parley's own markup has none of it (the CSP would block inline handlers and styles anyway).
 */
function auditDom(): string[] {
  const bad: string[] = [];
  const same = (u: string) => new URL(u, location.href).origin === location.origin;
  const scheme = (u: string) => new URL(u.replace(/[\u0000-\u0020]/g, ''), location.href).protocol;
  const where = (el: Element) => `<${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}>`;
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (el.shadowRoot) bad.push(`shadow root on ${where(el)}`);
    if (['iframe', 'frame', 'object', 'embed', 'base', 'xmp', 'noscript', 'plaintext', 'applet'].includes(tag)) bad.push(`element ${where(el)}`);
    if (tag === 'style' || (tag === 'meta' && el.hasAttribute('http-equiv'))) bad.push(`element ${where(el)}`);
    if (tag === 'template' && el.closest('main, #chat-thread') && !el.id.startsWith('tpl-')) bad.push(`element ${where(el)}`);
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      if (name.startsWith('on') || ['srcdoc', 'formaction'].includes(name)) bad.push(`${where(el)} ${name}="${a.value}"`);
      if (['src', 'data', 'action', 'poster', 'background', 'xlink:href'].includes(name) && !same(a.value)) bad.push(`${where(el)} ${name}="${a.value}"`);
      // Our favicon is the one data: URL of our own (the CSP's img-src allows data: for it).
      const ownIcon = tag === 'link' && el.getAttribute('rel') === 'icon' && a.value.startsWith('data:image/svg+xml,') && el.parentElement === document.head;
      if (name === 'href' && !ownIcon && (tag !== 'a' ? !same(a.value) : !['http:', 'https:', 'mailto:'].includes(scheme(a.value))))
        bad.push(`${where(el)} href="${a.value}"`);
    }
    // getAttribute, not .src: an SVG <script> has no src property.
    const src = el.getAttribute('src');
    if (tag === 'script' && !(src && new URL(src, location.href).href.startsWith(`${location.origin}/static/`))) bad.push(`script ${src ?? 'inline'}`);
  }
  return bad;
}

describe('the XSS corpus rendered in a browser', { skip: skipWithoutBrowser() }, () => {
  let llm: FakeLlm;
  let server: BrowserApp;
  let browser: Browser;
  let session: Cookie[] = [];
  let adminId = 0;
  /** Payload number → the model / user made from it. */
  const modelIds = new Map<number, number>();
  const userIds = new Map<number, number>();
  /** The payload chats of the admin, one per payload, titled with it. */
  const chatIds = new Map<number, number>();
  const modelNameOf = (p: XssPayload) => ([...p.text].length <= NAME_COLUMN_MAX ? p.text : `model ${p.n}`);
  const usernamePayloads = XSS_CORPUS.filter((p) => [...p.text].length <= NAME_COLUMN_MAX && p !== adminPayload);
  /** Per page, so that a page still running after its test failed cannot blame the next test. */
  const detections = new WeakMap<Page, Detected[]>();

  /** A page with the detectors armed (see the top of the file). */
  async function armedPage(t: TestContext): Promise<Page> {
    const page = await newPage(browser, t);
    const detected: Detected[] = [];
    detections.set(page, detected);
    page.setDefaultTimeout(15_000);
    if (session.length > 0) await page.context().addCookies(session);
    await page.exposeBinding('__xssReport', ({ frame }, kind: Detected['kind'], detail: string) => {
      detected.push({ kind, detail, url: frame.url() });
    });
    await page.addInitScript(() => {
      const report = (window as unknown as { __xssReport: (k: string, d: string) => void }).__xssReport;
      const w = window as unknown as Record<string, unknown>;
      w.__xss = (n: unknown) => report('xss', String(n));
      Object.defineProperty(window, '__pwned', { set: (v) => report('pwned', String(v)), get: () => undefined });
      window.addEventListener('securitypolicyviolation', (e) => report('csp', `${e.violatedDirective} blocked ${e.blockedURI} ${e.sample}`), true);
    });
    // The attacker's origin is answered here, so nothing leaves the machine; a request to it is a finding.
    await page.context().route(`${ATTACKER}/**`, (route) => route.fulfill({ status: 204 }));
    page.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(`${server.baseUrl}/`) && !url.startsWith('data:') && !url.startsWith('about:'))
        detected.push({ kind: 'foreign request', detail: url, url: page.url() });
    });
    return page;
  }

  /** The page as loaded now: nothing ran, nothing was blocked, nothing foreign fetched, nothing dangerous in the DOM. */
  async function assertClean(page: Page, what: string): Promise<void> {
    const found = (detections.get(page) ?? []).splice(0);
    const dom = await page.evaluate(auditDom);
    assert.deepEqual(found, [], `${what}: a payload ran, was blocked by the CSP or fetched another origin`);
    assert.deepEqual(dom, [], `${what}: dangerous markup in the page`);
  }

  async function visit(page: Page, path: string, status = 200): Promise<string> {
    const res = await page.goto(`${server.baseUrl}${path}`);
    assert.equal(res?.status(), status, `GET ${path}`);
    await assertClean(page, path);
    return norm((await page.locator('body').textContent()) ?? '');
  }

  function assertShows(text: string, expected: string[], what: string): void {
    const shown = norm(text);
    const missing = expected.filter((e) => !shown.includes(norm(e)));
    assert.deepEqual(missing, [], `${what}: these payloads are not visible as text`);
  }

  /** Form posts and JSON calls from inside the page, as its own script makes them (Origin and CSRF token included). */
  function postForms(page: Page, posts: { path: string; fields: Record<string, string> }[]): Promise<{ status: number; url: string }[]> {
    return page.evaluate(async (list) => {
      const token = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
      const out: { status: number; url: string }[] = [];
      for (const { path, fields } of list) {
        const res = await fetch(path, { method: 'POST', body: new URLSearchParams({ ...fields, _csrf: token }) });
        out.push({ status: res.status, url: new URL(res.url).pathname });
      }
      return out;
    }, posts);
  }

  function callJson(page: Page, calls: { method: string; path: string; body: unknown }[]): Promise<{ status: number; body: unknown }[]> {
    return page.evaluate(async (list) => {
      const token = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
      const out: { status: number; body: unknown }[] = [];
      for (const { method, path, body } of list) {
        const res = await fetch(path, {
          method,
          headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': token },
          body: JSON.stringify(body),
        });
        out.push({ status: res.status, body: await res.json().catch(() => null) });
      }
      return out;
    }, calls);
  }

  before(async () => {
    [llm, server, browser] = await Promise.all([startFakeLlm(), startBrowserApp(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await llm?.close();
  });

  test('the detectors see a script that runs, a script the CSP blocks and a request to another origin', async () => {
    // Not through newPage: the CSP violation provoked here is logged as a console error, which newPage counts as a failure.
    const context = await browser.newContext();
    try {
      const seen: string[] = [];
      await context.exposeBinding('__xssReport', (_source, kind: string, detail: string) => void seen.push(`${kind} ${detail}`));
      const page = await context.newPage();
      await page.addInitScript(() => {
        const report = (window as unknown as { __xssReport: (k: string, d: string) => void }).__xssReport;
        (window as unknown as Record<string, unknown>).__xss = (n: unknown) => report('xss', String(n));
        window.addEventListener('securitypolicyviolation', (e) => report('csp', e.violatedDirective), true);
      });
      // A page of the attacker's origin, served here without any CSP.
      await page.route(`${ATTACKER}/`, (route) => route.fulfill({ contentType: 'text/html', body: '<img src=x onerror="__xss(0)">' }));
      await page.goto(`${ATTACKER}/`);
      for (let i = 0; i < 100 && seen.length < 1; i++) await page.waitForTimeout(20);
      await page.goto(`${server.baseUrl}/login`);
      await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="__xss(-1)">'));
      for (let i = 0; i < 100 && seen.length < 2; i++) await page.waitForTimeout(20);
      assert.deepEqual(seen, ['xss 0', 'csp script-src-attr'], 'without a CSP the handler runs; under the app CSP it is blocked and reported');
      assert.deepEqual(await page.evaluate(auditDom), ['<img> onerror="__xss(-1)"']);
    } finally {
      await context.close();
    }
  });

  test('payloads as the admin name, usernames, model names and ids, and audit details', async (t) => {
    const page = await armedPage(t);
    await page.goto(`${server.baseUrl}/register`);
    await page.getByLabel('Name').fill(adminPayload.text);
    await page.getByLabel('E-mail').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL('**/chat');
    session = await page.context().cookies();
    await assertClean(page, 'chat page of the hostile admin');
    assertShows(norm((await page.locator('nav.navbar').textContent()) ?? ''), [adminPayload.text], 'navbar');
    const db = server.database.db;
    adminId = (await db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', admin.email).executeTakeFirstOrThrow()).idappuser;

    // Models: the first two through the form itself (so their flash is shown), the rest posted from the page.
    await page.goto(`${server.baseUrl}/admin/models`);
    const modelFields = (p: XssPayload) => ({
      name: fitsNameField(p, NAME_COLUMN_MAX) ? p.text : `model ${p.n}`,
      baseUrl: llm.baseUrl,
      model: fitsNameField(p, 200) ? p.text : `m${p.n}`,
      enabled: 'on',
    });
    for (const p of XSS_CORPUS.slice(0, 2)) {
      const f = modelFields(p);
      await page.getByLabel('Name').fill(f.name);
      await page.getByLabel('Base URL').fill(f.baseUrl);
      await page.getByLabel('Model id').fill(f.model);
      await page.getByRole('button', { name: 'Add model' }).click();
      await page.locator('.alert', { hasText: 'added' }).waitFor();
      await assertClean(page, `flash after adding model ${p.n}`);
      assertShows(norm((await page.locator('.alert').first().textContent()) ?? ''), [f.name], 'the flash');
    }
    const posted = await postForms(
      page,
      XSS_CORPUS.slice(2).map((p) => ({ path: '/admin/models', fields: modelFields(p) })),
    );
    assert.deepEqual(
      posted.filter((r) => r.status !== 200 || r.url !== '/admin/models'),
      [],
    );
    // What the forms refuse (control characters) an adopted database may still hold.
    for (const p of XSS_CORPUS) {
      const row = await db
        .updateTable('chatbot_schema.llm')
        .set({ txshortname: modelNameOf(p), txmodel: p.text })
        .where('txshortname', '=', modelFields(p).name)
        .returning('idllm')
        .executeTakeFirstOrThrow();
      modelIds.set(p.n, row.idllm);
    }

    // Usernames: through the admin's "Add a user" form where they fit (the first one typed into it), else by SQL.
    const viaForm = usernamePayloads.filter((p) => fitsNameField(p, 50));
    await page.goto(`${server.baseUrl}/admin/users/new`);
    const first = viaForm[0] as XssPayload;
    await page.getByLabel('Username').fill(first.text);
    await page.getByRole('textbox', { name: 'E-mail' }).fill(`xss${first.n}@example.com`);
    await page.getByLabel(/Google only/).check();
    await page.getByRole('button', { name: /Add|Create/ }).click();
    await page.waitForURL(/\/admin\/users\/\d+$/);
    await assertClean(page, 'user page after adding a hostile user');
    assertShows(norm((await page.locator('main').textContent()) ?? ''), [first.text], 'flash and user page');
    const created = await postForms(
      page,
      viaForm.slice(1).map((p) => ({ path: '/admin/users/new', fields: { username: p.text, email: `xss${p.n}@example.com`, role: 'user', signIn: 'google' } })),
    );
    assert.deepEqual(
      created.filter((r) => r.status !== 200 || !/^\/admin\/users\/\d+$/.test(r.url)),
      [],
    );
    const bySql = usernamePayloads.filter((p) => !fitsNameField(p, 50));
    await db
      .insertInto('chatbot_schema.app_user')
      .values(bySql.map((p) => ({ txusername: p.text, txemail: `xss${p.n}@example.com`, password: '' })))
      .execute();
    const users = await db.selectFrom('chatbot_schema.app_user').select(['idappuser', 'txemail']).where('txemail', 'like', 'xss%').execute();
    for (const u of users) userIds.set(Number(/^xss(\d+)@/.exec(u.txemail)?.[1]), u.idappuser);
    assert.equal(userIds.size, usernamePayloads.length);

    // The users list, page by page, and each user's own page.
    let listed = '';
    for (let n = 1; n <= 3; n++) listed += await visit(page, `/admin/users?page=${n}`);
    assertShows(
      listed,
      usernamePayloads.map((p) => p.text),
      'users list',
    );
    for (const p of usernamePayloads.filter(breaksContext)) {
      const text = await visit(page, `/admin/users/${userIds.get(p.n)}`);
      assertShows(text, [p.text], `user page of payload ${p.n}`);
    }
    // The search box echoes what was searched for.
    for (const p of XSS_CORPUS.filter((x) => /breakout/.test(x.kind) && fitsNameField(x, 200))) {
      await visit(page, `/admin/users?q=${encodeURIComponent(p.text)}`);
      assert.equal(await page.getByLabel('Search username or e-mail').inputValue(), p.text);
    }

    // Models: the list and each edit form (the name and id are input values there).
    const models = await visit(page, '/admin/models');
    assertShows(models, [...XSS_CORPUS.map(modelNameOf), ...XSS_CORPUS.map((p) => p.text)], 'model list');
    for (const p of XSS_CORPUS.filter(breaksContext)) {
      await visit(page, `/admin/models/${modelIds.get(p.n)}/edit`);
      assert.equal(await page.getByLabel('Model id').inputValue(), p.text.replace(/[\r\n]/g, ''), 'an input drops line breaks');
    }

    // "Test connection" against a hostile model server: the ids it offers and the one it lacks are shown in the flash.
    const offered = XSS_CORPUS.filter((p) => /breakout/.test(p.kind) && fitsNameField(p, 200)).slice(0, 4);
    const lacking = XSS_CORPUS.find((p) => p.kind === 'polyglot') as XssPayload;
    const modelServer = createServer((_req, res) => {
      const data = offered.map((p) => ({ id: p.text, object: 'model', created: 0, owned_by: 'x' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    });
    await new Promise<void>((resolve) => modelServer.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => modelServer.close(() => resolve())));
    const serverUrl = `http://127.0.0.1:${(modelServer.address() as AddressInfo).port}/v1`;
    const [added] = await postForms(page, [{ path: '/admin/models', fields: { name: 'Hostile model server', baseUrl: serverUrl, model: lacking.text } }]);
    assert.equal(added?.status, 200);
    const { idllm: hostileServerModel } = await db
      .selectFrom('chatbot_schema.llm')
      .select('idllm')
      .where('txshortname', '=', 'Hostile model server')
      .executeTakeFirstOrThrow();
    await visit(page, '/admin/models');
    await page.locator(`tr[data-model-id="${hostileServerModel}"]`).getByRole('button', { name: 'Test connection' }).click();
    await page.locator('.alert', { hasText: 'answered' }).waitFor();
    await assertClean(page, 'flash of a hostile model server');
    assertShows((await page.locator('.alert').allTextContents()).join(' '), [...offered.map((p) => p.text), lacking.text], 'the test-connection flash');

    // The audit log: the admin as actor, the users as targets, the model names and ids in the sentences.
    let audit = '';
    for (let n = 4; n >= 1; n--) audit += await visit(page, `/admin/audit?page=${n}`);
    assertShows(audit, [adminPayload.text, ...viaForm.map((p) => p.text)], 'audit log');
    assertShows(
      audit,
      XSS_CORPUS.filter((p) => fitsNameField(p, 200)).map((p) => p.text),
      'audit sentences',
    );
    await screenshot(page, 'xss-audit');
  });

  test('payloads as chat titles, in the chat list, on chat pages and in the statistics', async (t) => {
    const page = await armedPage(t);
    await page.goto(`${server.baseUrl}/chat`);
    const calls = XSS_CORPUS.map((p) => ({ method: 'POST', path: '/api/chats', body: { llm: modelIds.get(p.n) } }));
    const made = await callJson(page, calls);
    for (const [i, p] of XSS_CORPUS.entries()) {
      assert.equal(made[i]?.status, 201, `chat for payload ${p.n}`);
      chatIds.set(p.n, (made[i]?.body as { id: number } | undefined)?.id ?? 0);
    }
    const renamed = await callJson(
      page,
      XSS_CORPUS.map((p) => ({ method: 'PATCH', path: `/api/chats/${chatIds.get(p.n)}`, body: { title: p.text } })),
    );
    assert.deepEqual(
      renamed.filter((r) => r.status !== 200),
      [],
    );

    // A prompt and an answer in each payload chat and each hostile user's own chat, so the statistics list them all.
    const db = server.database.db;
    await db
      .insertInto('chatbot_schema.chat')
      .values(usernamePayloads.map((p) => ({ idappuser: userIds.get(p.n) as number, idllm: modelIds.get(p.n) as number, txtitle: p.text })))
      .execute();
    await sql`
      WITH m AS (
        INSERT INTO chatbot_schema.message (idchat, txmessage)
        SELECT c.idchat, 'q' FROM chatbot_schema.chat c
        RETURNING idmessage, idchat)
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
      SELECT m.idchat, m.idmessage, c.idllm, 'a', 'a', 'complete', now() - interval '2 s', now() - interval '1 s', now(), 3, 5
      FROM m JOIN chatbot_schema.chat c ON c.idchat = m.idchat`.execute(db);

    const list = await visit(page, '/chat');
    assertShows(
      list,
      XSS_CORPUS.map((p) => p.text),
      'chat list',
    );
    const sidebarTitles = await page.locator('.chat-link').evaluateAll((links) => links.map((a) => a.getAttribute('title') ?? ''));
    assertShows(
      sidebarTitles.join(' '),
      XSS_CORPUS.map((p) => p.text),
      'chat list title attributes',
    );
    for (const p of XSS_CORPUS.filter(breaksContext)) {
      await visit(page, `/chat/${chatIds.get(p.n)}`);
      assert.equal(norm((await page.locator('#chat-title').textContent()) ?? ''), norm(p.text), `chat ${p.n} heading`);
      assert.ok(norm(await page.title()).includes(norm(p.text)), `chat ${p.n} <title>: ${await page.title()}`);
    }

    // An error page that names the bad input: the stats pages refuse an unknown parameter by its name.
    for (const p of XSS_CORPUS.filter(breaksContext)) {
      assertShows(await visit(page, `/admin/stats?${encodeURIComponent(p.text)}=1`, 400), [`Unknown parameter ${p.text}`], `error page for payload ${p.n}`);
    }
    const stats = await visit(page, '/admin/stats');
    assertShows(stats, [adminPayload.text, ...usernamePayloads.map((p) => p.text), ...XSS_CORPUS.map(modelNameOf)], 'statistics page');
    await screenshot(page, 'xss-stats');
    const ownChats = await visit(page, `/admin/stats/users/${adminId}`);
    assertShows(ownChats, [adminPayload.text, ...XSS_CORPUS.map((p) => p.text), ...XSS_CORPUS.map(modelNameOf)], "the admin's chats in the statistics");
    const someone = usernamePayloads[usernamePayloads.length - 1] as XssPayload;
    assertShows(await visit(page, `/admin/stats/users/${userIds.get(someone.n)}`), [someone.text], 'a hostile user in the statistics');
    assertShows(await visit(page, '/settings/usage'), XSS_CORPUS.map(modelNameOf), 'own usage');
  });

  test('the corpus as a model answer: while it streams, when it is done, after a reload; the prompt and a renamed title', async (t) => {
    const page = await armedPage(t);
    const model = XSS_CORPUS.find((p) => p.kind === 'svg onload') as XssPayload;
    await visit(page, '/chat');
    await page.locator('#model-select').selectOption(String(modelIds.get(model.n)));
    // The fake model answers "You said: <the prompt>"; [[slow:MS]] paces its chunks so the stream can be watched.
    const prompt = `${promptTitlePayload.text} [[slow:6]]\n\n${corpusAsMarkdown()}`;
    const input = page.getByLabel('Message', { exact: true });
    await input.fill(prompt);
    await input.press('Enter');

    const streaming = '#chat-thread > .turn:last-child .turn-answer[data-status="streaming"] .answer-streaming';
    const half = XSS_CORPUS[Math.floor(XSS_CORPUS.length / 2)] as XssPayload;
    const midway = await page.waitForFunction(
      ([selector, marker]) => {
        const shown = document.querySelector(selector)?.textContent ?? '';
        return shown.includes(marker) ? shown : false;
      },
      [streaming, `**P${half.n}**`] as const,
      { timeout: 30_000 },
    );
    const streamed = (await midway.jsonValue()) as string;
    await assertClean(page, 'the answer while it streams');
    for (const p of XSS_CORPUS.filter((x) => x.n < half.n)) assert.ok(streamed.includes(p.text), `payload ${p.n} shown as text while streaming`);

    // The same chat opened in a second tab mid-answer: the server renders the partial text, the page resumes the stream.
    await page.waitForURL(/\/chat\/\d+$/);
    const watcher = await armedPage(t);
    await watcher.goto(page.url());
    const watched = watcher.locator('#chat-thread > .turn:last-child .turn-answer');
    assert.equal(await watched.getAttribute('data-status'), 'streaming', 'the second tab opened while the answer streams');
    await assertClean(watcher, 'the partial answer rendered by the server');
    assertShows((await watched.textContent()) ?? '', [XSS_CORPUS[0]?.text ?? ''], 'the partial answer');

    const answer = page.locator('#chat-thread > .turn:last-child .turn-answer[data-status="complete"] .answer-content');
    await answer.waitFor({ timeout: 60_000 });
    await assertClean(page, 'the finished answer, inserted by the page');
    await watched.and(watcher.locator('[data-status="complete"]')).waitFor({ timeout: 60_000 });
    await assertClean(watcher, 'the finished answer in the second tab');
    assertShows(
      (await watched.locator('.answer-content').textContent()) ?? '',
      XSS_CORPUS.map((p) => p.shows),
      'the finished answer in the second tab',
    );
    const expected = XSS_CORPUS.map((p) => p.shows);
    assertShows(norm((await answer.textContent()) ?? ''), expected, 'the finished answer');
    const bubble = norm((await page.locator('#chat-thread > .turn:last-child .prompt-bubble').textContent()) ?? '');
    assertShows(
      bubble,
      XSS_CORPUS.map((p) => p.text),
      'the prompt',
    );
    await page.waitForURL(/\/chat\/\d+$/);
    assertShows(norm((await page.locator('#chat-title').textContent()) ?? ''), [promptTitlePayload.text], 'the title made from the prompt');

    // Renamed through the dialog: the page puts the new title in the list and the heading itself.
    await page.locator('.chat-item.active').getByRole('button', { name: 'Rename chat' }).click();
    await page.locator('#rename-input').fill(renamePayload.text);
    await page.locator('#rename-modal').getByRole('button', { name: 'Save' }).click();
    await page.locator('.chat-item.active .chat-link', { hasText: renamePayload.text }).waitFor();
    await assertClean(page, 'the renamed chat');
    assert.equal(norm((await page.locator('#chat-title').textContent()) ?? ''), renamePayload.text);

    await page.reload();
    await assertClean(page, 'the chat after a reload');
    assertShows(norm((await page.locator('#chat-thread .answer-content').last().textContent()) ?? ''), expected, 'the answer after a reload');
    assertShows(norm((await page.locator('#chat-title').textContent()) ?? ''), [renamePayload.text], 'the renamed title after a reload');
    await screenshot(page, 'xss-answer');
  });

  test('the corpus as raw HTML in answers adopted from the prototype, rendered on read through the sanitizer alone', async (t) => {
    // The Flask prototype stored Python-Markdown's HTML, raw HTML passed through; until such a row is re-rendered
    // (is_html_ours false) and when its markdown was lost (txmarkdown null), sanitize-html is the only layer.
    const db = server.database.db;
    const idllm = modelIds.get(1) as number;
    const { idchat } = await db
      .insertInto('chatbot_schema.chat')
      .values({ idappuser: adminId, idllm, txtitle: 'Prototype answers' })
      .returning('idchat')
      .executeTakeFirstOrThrow();
    const messages = await db
      .insertInto('chatbot_schema.message')
      .values(XSS_CORPUS.map((p) => ({ idchat, txmessage: `P${p.n}` })))
      .returning(['idmessage', 'txmessage'])
      .execute();
    const byMarker = new Map(messages.map((m) => [m.txmessage, m.idmessage]));
    await db
      .insertInto('chatbot_schema.response')
      .values(
        XSS_CORPUS.map((p) => ({
          idchat,
          idmessage: byMarker.get(`P${p.n}`) as number,
          idllm,
          txcontent: `<p>${p.text}</p>`,
          txmarkdown: null,
          txstatus: 'complete' as const,
          is_html_ours: false,
        })),
      )
      .execute();
    const page = await armedPage(t);
    await visit(page, `/chat/${idchat}`);
    assert.deepEqual(
      await page.locator('#chat-thread .prompt-bubble').allTextContents(),
      XSS_CORPUS.map((p) => `P${p.n}`),
    );
    // What holds no markup must come through whole (a sanitizer that dropped everything would pass the rest).
    const answers = await page.locator('#chat-thread .turn-answer').allTextContents();
    const plain = XSS_CORPUS.filter((p) => !/[<>&]/.test(p.text));
    assert.ok(plain.length >= 8);
    for (const p of plain) assertShows(answers[p.n - 1] ?? '', [p.text], `prototype answer ${p.n}`);
    await screenshot(page, 'xss-prototype-answers');
  });

  test('CSV exports: attachments, never HTML, no cell a spreadsheet would run', async (t) => {
    const page = await armedPage(t);
    await visit(page, '/admin/audit');
    const exports: { path: string; must: string[] }[] = [
      { path: '/admin/audit?format=csv', must: [adminPayload.text, ...usernamePayloads.filter((p) => fitsNameField(p, 50)).map((p) => p.text)] },
      { path: '/admin/stats?format=csv&table=users', must: usernamePayloads.map((p) => p.text) },
      { path: '/admin/stats?format=csv&table=prompts_per_user', must: usernamePayloads.map((p) => p.text) },
      { path: '/admin/stats?format=csv&table=models', must: XSS_CORPUS.map(modelNameOf) },
      { path: '/admin/stats?format=csv&table=average_per_model', must: XSS_CORPUS.map(modelNameOf) },
      { path: '/admin/stats?format=csv&table=daily', must: XSS_CORPUS.map(modelNameOf) },
      { path: `/admin/stats/users/${adminId}?format=csv`, must: XSS_CORPUS.map((p) => p.text) },
      { path: '/settings/usage?format=csv', must: XSS_CORPUS.map(modelNameOf) },
    ];
    const formula = /^[=+\-@\t\r]/;
    for (const { path, must } of exports) {
      const res = await page.request.get(`${server.baseUrl}${path}`);
      assert.equal(res.status(), 200, path);
      const headers = res.headers();
      assert.match(headers['content-type'] ?? '', /^text\/csv\b/, `${path} content-type`);
      assert.equal(headers['x-content-type-options'], 'nosniff', `${path} nosniff`);
      assert.match(headers['content-disposition'] ?? '', /^attachment;/, `${path} content-disposition`);
      const cells = parseCsv(await res.text()).flat();
      const runnable = cells.filter((c) => formula.test(c) && !/^-\d+(\.\d+)?$/.test(c));
      assert.deepEqual(runnable, [], `${path}: cells a spreadsheet would evaluate`);
      // Each payload is there, whole, with an apostrophe in front where it would have been a formula.
      const present = new Set(cells.map((c) => (c.startsWith("'") && formula.test(c.slice(1)) ? c.slice(1) : c)));
      const inJson = cells.filter((c) => c.startsWith('{')).join('\n');
      const missing = must.filter((m) => !present.has(m) && !inJson.includes(JSON.stringify(m).slice(1, -1)));
      assert.deepEqual(missing, [], `${path}: payloads missing`);
    }

    // Opened in the browser, a CSV is a download: the page it was opened from stays, and nothing is rendered.
    for (const path of ['/admin/audit?format=csv', `/admin/stats/users/${adminId}?format=csv`]) {
      const download = page.waitForEvent('download');
      await page.goto(`${server.baseUrl}${path}`).catch((err: Error) => {
        if (!/Download is starting/.test(err.message)) throw err;
      });
      const file = await (await download).path();
      assert.ok((await readFile(file, 'utf8')).length > 0);
      assert.equal(new URL(page.url()).pathname, '/admin/audit', `${path} was not opened as a page`);
      await assertClean(page, `after opening ${path}`);
    }
  });
});
