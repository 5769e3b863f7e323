import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';
import { relyingPartyOf } from './config-webauthn.ts';

const env = (PUBLIC_URL: string) => ({ APP_SECRET: 'x'.repeat(32), DATA_DIR: '/tmp/parley-config-webauthn', PUBLIC_URL });

test("the relying party is PUBLIC_URL's host and origin; a loopback address is this machine's `localhost`", () => {
  assert.deepEqual(relyingPartyOf('https://chat.example.com/'), { rpId: 'chat.example.com', origin: 'https://chat.example.com' });
  assert.deepEqual(relyingPartyOf('https://chat.example.com:8443/parley'), { rpId: 'chat.example.com', origin: 'https://chat.example.com:8443' });
  assert.deepEqual(relyingPartyOf('http://localhost:5000'), { rpId: 'localhost', origin: 'http://localhost:5000' });
  assert.deepEqual(relyingPartyOf('http://parley.localhost:5000'), { rpId: 'parley.localhost', origin: 'http://parley.localhost:5000' });
  assert.deepEqual(relyingPartyOf('http://127.0.0.1:5000'), { rpId: 'localhost', origin: 'http://localhost:5000' });
  assert.deepEqual(relyingPartyOf('http://[::1]:5000'), { rpId: 'localhost', origin: 'http://localhost:5000' });
  assert.deepEqual(loadConfig(env('https://chat.example.com')).relyingParty, { rpId: 'chat.example.com', origin: 'https://chat.example.com' });
});

test('the app refuses to start with a PUBLIC_URL WebAuthn cannot use, and says why', () => {
  for (const url of ['https://192.168.1.10', 'http://10.0.0.5:5000', 'https://[2001:db8::1]:8443']) {
    assert.throws(
      () => loadConfig(env(url)),
      (err: Error) => err instanceof ConfigError && /^PUBLIC_URL: .* is an IP address, and passkeys/.test(err.message),
      url,
    );
  }
  assert.throws(
    () => loadConfig(env('http://chat.example.com')),
    (err: Error) =>
      err instanceof ConfigError &&
      /^PUBLIC_URL: http:\/\/chat.example.com is plain http, and browsers offer passkeys \(WebAuthn\) only on https/.test(err.message),
  );
});
