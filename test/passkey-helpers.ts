import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { TestClient } from './client.ts';
import { type AssertionOverrides, type CreationOptions, type RequestOptions, SoftAuthenticator } from './soft-authenticator.ts';

/** The relying party of the test apps' default PUBLIC_URL (http://localhost:5000). */
export const newAuthenticator = (opts: { synced?: boolean; counterStep?: number } = {}) =>
  new SoftAuthenticator({ origin: 'http://localhost:5000', rpId: 'localhost', ...opts });

const JSON_ACCEPT = { accept: 'application/json' };

/** POSTs to an options route as web/passkeys.ts does (CSRF header, JSON back). */
export async function fetchOptions<T>(c: TestClient, url: string): Promise<{ res: LightMyRequestResponse; options: T }> {
  const res = await c.app.inject({ method: 'POST', url, headers: { ...JSON_ACCEPT, 'x-csrf-token': c.csrf, cookie: c.cookieHeader() } });
  return { res, options: res.json() as T };
}

/** Settings → Passkeys → Add, as the browser does it; returns the form post's answer (303 back to the page). */
export async function addPasskey(c: TestClient, auth: SoftAuthenticator, name = 'Laptop'): Promise<LightMyRequestResponse> {
  await c.get('/settings/passkeys');
  const { res, options } = await fetchOptions<CreationOptions>(c, '/settings/passkeys/options');
  assert.equal(res.statusCode, 200, res.body);
  return c.post('/settings/passkeys', { passkey_name: name, credential: JSON.stringify(auth.register(options)) });
}

/** A passkey assertion for `optionsUrl`, posted to `postUrl` as the form does. */
export async function assertWith(
  c: TestClient,
  auth: SoftAuthenticator,
  optionsUrl: string,
  postUrl: string,
  overrides: AssertionOverrides = {},
): Promise<LightMyRequestResponse> {
  const { res, options } = await fetchOptions<RequestOptions>(c, optionsUrl);
  assert.equal(res.statusCode, 200, res.body);
  return c.post(postUrl, { credential: JSON.stringify(auth.assert(options, overrides)) });
}

/** The sign-in page's passkey button. */
export async function signInWithPasskey(c: TestClient, auth: SoftAuthenticator, overrides: AssertionOverrides = {}): Promise<LightMyRequestResponse> {
  await c.get('/login');
  return assertWith(c, auth, '/login/passkey/options', '/login/passkey', overrides);
}

/** The flash the next page shows (after a redirect). */
export async function flashAfter(c: TestClient, res: LightMyRequestResponse): Promise<string> {
  assert.equal(res.statusCode, 303, `expected a redirect, got ${res.statusCode}: ${res.body.slice(0, 300)}`);
  const page = await c.get(String(res.headers.location));
  return (
    /<div class="alert[^"]*"[^>]*>([\s\S]*?)<\/div>/
      .exec(page.body)?.[1]
      ?.replace(/<[^>]+>/g, '')
      .trim() ?? ''
  );
}
