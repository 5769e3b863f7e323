import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { OpenedDatabase } from '../../src/db/database.ts';
import { startTestApp } from '../app.ts';
import { decideBrowser } from './chromium.ts';

export { skipWithoutBrowser } from './chromium.ts';

/**
 * Browser journeys: the real app on a real socket, driven by Debian's Chromium through playwright-core
 * (no downloaded browser builds). Without Chromium a journey is skipped (`skipWithoutBrowser`, one line from
 * `npm test` says how to install it), unless REQUIRE_BROWSER=1 (CI) makes that a failure.
 * Pages load the bundles in public/build, so run `npm run build:web` first (`npm test` does).
 */
const root = path.resolve(import.meta.dirname, '../..');
export const SCREENSHOT_DIR = path.join(root, 'test-results');
export const DESKTOP = { width: 1280, height: 800 } as const;
export const MOBILE = { width: 390, height: 844 } as const;

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export interface BrowserApp {
  baseUrl: string;
  app: FastifyInstance;
  database: OpenedDatabase;
  close(): Promise<void>;
}

/** A port the OS says is free right now; the app binds it a moment later (retried if someone took it meanwhile). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The app as production builds it, listening on 127.0.0.1. PUBLIC_URL must be the origin the browser
 * really uses, because the CSRF check compares the Origin header of every form post with it.
 */
export async function startBrowserApp(env: Record<string, string> = {}): Promise<BrowserApp> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const started = await startTestApp({ ...env, PUBLIC_URL: baseUrl });
    try {
      await started.app.listen({ port, host: '127.0.0.1' });
      return { baseUrl, app: started.app, database: started.database, close: started.close };
    } catch (err) {
      await started.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

export async function launchBrowser(): Promise<Browser> {
  const decision = decideBrowser();
  if (!decision.run) throw new Error(decision.message);
  return chromium.launch({ executablePath: decision.executablePath, headless: true, args: chromiumArgs });
}

/**
 * Creates an account through the registration form, as a person does, and waits for the chat it lands on. With
 * `baseUrl` the page opens /register first; without, it is already there.
 */
export async function registerThroughForm(page: Page, user: { name: string; email: string; password: string }, baseUrl?: string): Promise<void> {
  if (baseUrl !== undefined) await page.goto(`${baseUrl}/register`);
  await page.getByLabel('Name').fill(user.name);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/chat');
}

/**
 * A page in a fresh browser context (its own cookies: a different visitor). Anything a user would not
 * notice but a developer must — a script error, a CSP violation, a stylesheet or script that fails to
 * load — is collected and fails the test when it ends.
 */
export async function newPage(
  browser: Browser,
  t: TestContext,
  viewport: { width: number; height: number } = DESKTOP,
  /** Fetches whose refusal the test provokes on purpose (a 429 the page shows): their 4xx is not a problem. */
  expectedRefusals?: RegExp,
): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: string[] = [];
  // Chromium logs every 4xx/5xx as "Failed to load resource", the page's own status included. A page that
  // answers 4xx itself is expected (a form re-rendered with its errors, a wrong password); its subresources
  // failing is not. Which is which is decided at the end, when every response has been seen.
  const failedLoads: string[] = [];
  const documentErrors = new Set<string>();

  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location().url;
    if (msg.text().startsWith('Failed to load resource')) failedLoads.push(where);
    else problems.push(`console error: ${msg.text()}${where ? ` (at ${where})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('response', (res) => {
    if (res.status() < 400) return;
    if (expectedRefusals?.test(res.url()) && res.status() < 500) {
      documentErrors.add(res.url()); // its "Failed to load resource" console line is expected too
      return;
    }
    if (res.request().resourceType() === 'document') documentErrors.add(res.url());
    else problems.push(`${res.status()} for ${res.request().resourceType()} ${res.url()}`);
  });
  page.on('requestfailed', (req) => {
    // A navigation replacing a page cancels that page's pending requests; that is not a failure.
    if (req.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`);
  });

  t.after(async () => {
    await context.close();
    for (const url of failedLoads) if (!documentErrors.has(url)) problems.push(`failed to load ${url || 'a resource'}`);
    if (problems.length > 0) throw new Error(`The browser reported problems:\n  ${[...new Set(problems)].join('\n  ')}`);
  });
  return page;
}

/** Saves test-results/<name>.png (gitignored) for a human to look at. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
