import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { applyUserAction } from '../../src/admin/user-actions.ts';
import { createResetLink } from '../../src/admin/user-detail-queries.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { createSession } from '../../src/auth/sessions.ts';
import { createUser, grantAdmin } from '../../src/users/user-queries.ts';
import { addModel } from '../chat-fixtures.ts';
import { DEFAULT_PASSWORD, TestClient } from '../client.ts';
import { TestProvider } from '../google-provider.ts';
import { enrolThroughSettings } from '../totp-helpers.ts';
import { type BrowserApp, launchBrowser, MOBILE, newPage, screenshot, skipWithoutBrowser, startBrowserApp } from './harness.ts';

/**
 * Issue 16 item 13: no page scrolls sideways on a phone. Every GET page of the authorization matrix
 * (test/authorization.test.ts, read as text so that a page added there is visited here too) is opened at 390 px by each
 * kind of visitor the matrix lets in (signed out, second factor pending, Google link pending, user, admin), with real
 * ids and content that is long where it can be (names, e-mail addresses, base URLs, code in answers), and
 * `document.documentElement.scrollWidth <= innerWidth` must hold on each. The failures are listed by visitor and URL.
 */
const root = path.resolve(import.meta.dirname, '../..');

/** GET routes of the matrix that are not pages a person looks at: redirects, images, JSON, files (and all of /api/). */
const NOT_PAGES = new Set([
  '/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/static/*',
  '/static/vendor/*',
  '/login/google',
  '/login/google/authorized',
  '/login/google/link/complete',
  '/2fa/qrcode.png',
  // A download (all one's chats as JSON), not a page.
  '/settings/export',
]);

type Visitor = 'anonymous' | 'pending2fa' | 'googleLink' | 'user' | 'admin';
/** The matrix's columns, in order (anon, 2fa, glink, user, deact, admin, demoted); null: a column no visit is made as. */
const COLUMNS: (Visitor | null)[] = ['anonymous', 'pending2fa', 'googleLink', 'user', null, 'admin', null];

/** Each GET page of the matrix with the visitors it admits (outcome ok or allow). */
function matrixPages(): { route: string; visitors: Visitor[] }[] {
  const source = readFileSync(path.join(root, 'test/authorization.test.ts'), 'utf8');
  const pages = new Map<string, Set<Visitor>>();
  for (const m of source.matchAll(/^\s*\['GET',\s*'([^']+)',((?:\s*'[a-z0-9-]+',?){7})/gm)) {
    const route = m[1] as string;
    if (NOT_PAGES.has(route) || route.startsWith('/api/')) continue;
    const outcomes = [...(m[2] as string).matchAll(/'([a-z0-9-]+)'/g)].map((o) => o[1]);
    const visitors = pages.get(route) ?? new Set<Visitor>();
    outcomes.forEach((outcome, i) => {
      const visitor = COLUMNS[i];
      if (visitor && (outcome === 'ok' || outcome === 'allow')) visitors.add(visitor);
    });
    if (visitors.size > 0) pages.set(route, visitors);
  }
  return [...pages].map(([route, visitors]) => ({ route, visitors: [...visitors] }));
}

const LONG = 'Maximiliane-Wolfeschlegelsteinhausenbergerdorff';

describe('every page at phone width', { skip: skipWithoutBrowser() }, () => {
  const provider = new TestProvider();
  let server: BrowserApp;
  let browser: Browser;
  const ids = { admin: 0, user: 0, adminChat: 0, userChat: 0, model: 0, group: 0, resetToken: '' };

  before(async () => {
    await provider.start();
    server = await startBrowserApp(provider.env());
    browser = await launchBrowser();
    const db = server.database.db;
    const make = async (username: string, email: string) => (await createUser(db, { username, email, passwordHash: await hashPassword(DEFAULT_PASSWORD) })).id;
    ids.admin = await make(`Ada ${LONG}`, `ada.${LONG.toLowerCase()}@a-rather-long-company-domain.example.com`);
    await grantAdmin(db, ids.admin);
    ids.user = await make(`Bob ${LONG}`, `bob.${LONG.toLowerCase()}@a-rather-long-company-domain.example.com`);
    await make('Linker', 'linker@example.com');
    await make('Tess Totp', 'tess@example.com');
    // Tess turns 2FA on: her password then leads to the second step.
    const tess = new TestClient(server.app);
    await tess.login('tess@example.com');
    await enrolThroughSettings(tess);

    ids.model = await addModel(server.database, `https://models.a-rather-long-company-domain.example.com/v1/openai-compatible/${LONG}`, `Model ${LONG}`);
    const answer = [
      'Here is the **command**:',
      '```sh',
      `curl -sS https://models.a-rather-long-company-domain.example.com/v1/chat/completions -H 'Authorization: Bearer ${'x'.repeat(60)}' -d @request.json`,
      '```',
      `And a long word: ${LONG.repeat(3)}, a link https://example.com/${'path/'.repeat(20)}`,
      '',
      '| Column one | Column two | Column three | Column four | Column five |',
      '|---|---|---|---|---|',
      '| a long cell value | another long cell value | and a third one | and a fourth | and a fifth |',
    ].join('\n');
    for (const who of ['admin', 'user'] as const) {
      const chat = await sql<{ idchat: number }>`
        INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle) VALUES (${ids[who]}, ${ids.model}, ${`A chat about ${LONG}`}) RETURNING idchat`.execute(db);
      const chatId = chat.rows[0]?.idchat as number;
      ids[who === 'admin' ? 'adminChat' : 'userChat'] = chatId;
      await sql`
        WITH m AS (INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chatId}, ${`How do I call ${LONG}? ${'word '.repeat(40)}`}) RETURNING idmessage)
        INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
        SELECT ${chatId}, m.idmessage, ${ids.model}, ${answer}, ${answer}, 'complete', now() - interval '3 s', now() - interval '2 s', now(), 40, 200 FROM m`.execute(
        db,
      );
    }
    // Audit rows, and a reset link for the signed-out page.
    const actor = { id: ids.admin, username: `Ada ${LONG}`, ip: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff' };
    await applyUserAction(db, actor, 'promote', [ids.user]);
    await applyUserAction(db, actor, 'demote', [ids.user]);
    ids.resetToken = await createResetLink(db, actor, ids.user);
    const group = await sql<{ idgroup: number }>`
      INSERT INTO chatbot_schema.user_group (txname, nprompts_per_day) VALUES (${`Group ${LONG}`}, 100) RETURNING idgroup`.execute(db);
    ids.group = group.rows[0]?.idgroup ?? 0;
    await sql`INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser) VALUES (${ids.group}, ${ids.user})`.execute(db);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await provider.stop();
  });

  /** The URL of a matrix route with real ids for this visitor; undefined for a parameter this test does not know. */
  function urlOf(route: string, visitor: Visitor): string | undefined {
    const own = visitor === 'admin' ? ids.adminChat : ids.userChat;
    const known: Record<string, string> = {
      '/chat/:id': `/chat/${own}`,
      '/admin/users/:id': `/admin/users/${ids.user}`,
      '/admin/models/:id/edit': `/admin/models/${ids.model}/edit`,
      '/admin/groups/:id': `/admin/groups/${ids.group}`,
      '/admin/stats/users/:id': `/admin/stats/users/${ids.user}`,
      '/reset-password/:token': `/reset-password/${ids.resetToken}`,
    };
    if (known[route]) return known[route];
    return route.includes(':') ? undefined : route;
  }

  /** A phone (390 × 844) signed in as this visitor. */
  async function phoneOf(visitor: Visitor, t: Parameters<typeof newPage>[1]): Promise<Page> {
    const page = await newPage(browser, t, MOBILE);
    const context = page.context();
    const signInWith = async (email: string, expected: RegExp) => {
      await page.goto(`${server.baseUrl}/login`);
      await page.getByLabel('E-mail').fill(email);
      await page.getByLabel('Password').fill(DEFAULT_PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(expected);
    };
    switch (visitor) {
      case 'anonymous':
        break;
      case 'pending2fa':
        await signInWith('tess@example.com', /\/login\/2fa/);
        break;
      case 'googleLink':
        provider.claims = { sub: 'g-linker', email: 'linker@example.com', email_verified: true, name: 'Linker' };
        await page.goto(`${server.baseUrl}/login/google`);
        await page.waitForURL(/\/login\/google\/link/);
        break;
      case 'user':
      case 'admin': {
        const session = await createSession(server.database.db, ids[visitor], {});
        await context.addCookies([{ name: 'parley_session', value: session, url: server.baseUrl }]);
        break;
      }
    }
    return page;
  }

  test('no page scrolls sideways at 390 px, whoever looks at it', async (t) => {
    const pages = matrixPages();
    assert.ok(pages.length >= 15, `the matrix was read (${pages.length} pages)`);
    const unknown: string[] = [];
    const tooWide: string[] = [];
    const offScreen: string[] = [];
    const byVisitor = new Map<Visitor, string[]>();
    for (const { route, visitors } of pages) {
      for (const visitor of visitors) {
        const url = urlOf(route, visitor);
        if (url === undefined) unknown.push(`${route} (as ${visitor})`);
        else byVisitor.set(visitor, [...(byVisitor.get(visitor) ?? []), url]);
      }
    }
    // Error pages are pages too.
    byVisitor.get('anonymous')?.push('/no-such-page');
    byVisitor.get('admin')?.push('/admin/users/999999');
    assert.deepEqual(unknown, [], 'routes with a parameter this test has no real id for: add them to urlOf');

    for (const [visitor, urls] of byVisitor) {
      const page = await phoneOf(visitor, t);
      for (const url of urls) {
        const res = await page.goto(`${server.baseUrl}${url}`);
        assert.match(String(res?.headers()['content-type']), /^text\/html/, `${url} as ${visitor} is a page (else add it to NOT_PAGES)`);
        const width = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth,
          inner: window.innerWidth,
          // A table that scrolls inside its box hides its last columns (the Actions) with no hint: its links, buttons and
          // boxes must be on screen, as a stacked table (.table-stack) puts them.
          hidden: [...document.querySelectorAll('table a, table button, table input')]
            .filter((el) => {
              const box = el.getBoundingClientRect();
              return box.width > 0 && box.right > window.innerWidth + 0.5;
            })
            .map((el) => el.textContent?.trim() || el.getAttribute('aria-label') || el.tagName.toLowerCase()),
        }));
        const name = `phone-${visitor}${url.replace(/[^a-z0-9]+/gi, '-')}`.slice(0, 80);
        if (width.scroll > width.inner) tooWide.push(`${url} as ${visitor}: ${width.scroll} px wide (status ${res?.status()})`);
        if (width.hidden.length > 0) offScreen.push(`${url} as ${visitor}: ${width.hidden.length} off-screen, e.g. ${width.hidden.slice(0, 3).join(', ')}`);
        if (width.scroll > width.inner || width.hidden.length > 0) await screenshot(page, name);
      }
    }
    assert.deepEqual(
      { tooWide, offScreen },
      { tooWide: [], offScreen: [] },
      `at ${MOBILE.width} px, pages wider than the phone:\n  ${tooWide.join('\n  ') || 'none'}\nand links or buttons of tables off-screen:\n  ${offScreen.join('\n  ') || 'none'}`,
    );
  });
});
