import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

const SECRET = 'a-secret-that-is-at-least-32-characters-long';
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'parley-config-'));
/** A minimal valid environment: a secret (so no file is written) and a throwaway DATA_DIR. */
const base = () => ({ APP_SECRET: SECRET, DATA_DIR: tempDir() });

describe('defaults', () => {
  test('an empty environment (but for the secret) gives the contract defaults', () => {
    const c = loadConfig(base());
    assert.equal(c.PORT, 5000);
    assert.equal(c.HOST, '127.0.0.1');
    assert.equal(c.PUBLIC_URL, 'http://localhost:5000');
    assert.equal(c.DATABASE_URL, undefined);
    assert.equal(c.APP_NAME, 'Parley');
    assert.equal(c.LOCAL_LOGIN, true);
    assert.equal(c.REGISTRATION, 'open');
    assert.equal(c.OIDC_ISSUER, 'https://accounts.google.com');
    assert.equal(c.OIDC_CLIENT_ID, undefined);
    assert.deepEqual(c.OIDC_ALLOWED_DOMAINS, []);
    assert.equal(c.OIDC_NAME, 'Google');
    assert.equal(c.OIDC_DOMAIN_CLAIM, 'hd');
    assert.equal(c.TOTP_FOR_OAUTH, false);
    assert.equal(c.REQUIRE_2FA_FOR_ADMINS, false);
    assert.equal(c.TRUST_PROXY, false);
    assert.deepEqual(c.OPENAI_MODELS, []);
    assert.equal(c.secureCookies, false);
    assert.equal(c.isProduction, false);
    assert.equal(loadConfig({ APP_SECRET: SECRET }).DATA_DIR, './data');
  });

  test('values are parsed: booleans, lists, numbers, https', () => {
    const c = loadConfig({
      ...base(),
      PORT: '8080',
      LOCAL_LOGIN: 'false',
      TRUST_PROXY: '1',
      TOTP_FOR_OAUTH: 'yes',
      REGISTRATION: 'closed',
      PUBLIC_URL: 'https://chat.example.com',
      GOOGLE_ALLOWED_DOMAINS: ' Example.com, , corp.example ',
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      OPENAI_MODELS: 'llama3, qwen2.5 ,',
      DATABASE_URL: 'postgresql://app@db.internal/parley',
    });
    assert.equal(c.PORT, 8080);
    assert.equal(c.LOCAL_LOGIN, false);
    assert.equal(c.TRUST_PROXY, true);
    assert.equal(c.TOTP_FOR_OAUTH, true);
    assert.equal(c.REGISTRATION, 'closed');
    assert.equal(c.secureCookies, true);
    assert.deepEqual(c.OIDC_ALLOWED_DOMAINS, ['example.com', 'corp.example']);
    assert.deepEqual(c.OPENAI_MODELS, ['llama3', 'qwen2.5']);
  });

  test("TRUST_PROXY: true, false or the proxies' addresses", () => {
    const trust = (v: string) => loadConfig({ ...base(), TRUST_PROXY: v }).TRUST_PROXY;
    assert.equal(trust('true'), true);
    assert.equal(trust('no'), false);
    assert.equal(trust('0'), false);
    assert.deepEqual(trust('loopback'), ['loopback']);
    assert.deepEqual(trust('10.0.0.1, 10.0.1.0/24,::1'), ['10.0.0.1', '10.0.1.0/24', '::1']);
  });

  test('an empty variable counts as unset', () => {
    assert.equal(loadConfig({ ...base(), PORT: '', REGISTRATION: '' }).PORT, 5000);
  });

  test('a loopback http GOOGLE_ISSUER is accepted (tests run a local OpenID provider)', () => {
    assert.equal(loadConfig({ ...base(), GOOGLE_ISSUER: 'http://127.0.0.1:9000' }).OIDC_ISSUER, 'http://127.0.0.1:9000');
    assert.equal(loadConfig({ ...base(), OIDC_ISSUER: 'http://localhost:9000/issuer' }).OIDC_ISSUER, 'http://localhost:9000/issuer');
  });
});

describe('a bad value stops the start with one line naming the variable', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '80.5' }],
    ['PUBLIC_URL', { PUBLIC_URL: 'chat.example.com' }],
    ['PUBLIC_URL', { PUBLIC_URL: 'ftp://chat.example.com' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://root@localhost/db' }],
    ['APP_SECRET', { APP_SECRET: 'too-short' }],
    ['APP_NAME', { APP_NAME: 'x'.repeat(61) }],
    ['LOCAL_LOGIN', { LOCAL_LOGIN: 'maybe' }],
    ['REGISTRATION', { REGISTRATION: 'invite-only' }],
    ['GOOGLE_ISSUER', { GOOGLE_ISSUER: 'http://accounts.example.com' }],
    ['GOOGLE_ISSUER', { GOOGLE_ISSUER: 'not a url' }],
    ['GOOGLE_CLIENT_SECRET', { GOOGLE_CLIENT_ID: 'id.apps.googleusercontent.com' }],
    ['GOOGLE_CLIENT_SECRET', { GOOGLE_CLIENT_SECRET: 'only-the-secret' }],
    ['OIDC_ISSUER', { OIDC_ISSUER: 'http://sso.example.com' }],
    ['OIDC_CLIENT_SECRET', { OIDC_CLIENT_ID: 'parley' }],
    ['OIDC_CLIENT_SECRET', { OIDC_CLIENT_SECRET: 'only-the-secret' }],
    ['OIDC_NAME', { OIDC_NAME: 'Corp\u202eOSS' }],
    ['OIDC_NAME', { OIDC_NAME: 'x'.repeat(41) }],
    ['OIDC_DOMAIN_CLAIM', { OIDC_DOMAIN_CLAIM: 'domain' }],
    ['TOTP_FOR_OAUTH', { TOTP_FOR_OAUTH: '2' }],
    ['REQUIRE_2FA_FOR_ADMINS', { REQUIRE_2FA_FOR_ADMINS: 'on' }],
    ['TRUST_PROXY', { TRUST_PROXY: 'sometimes' }],
    ['TRUST_PROXY', { TRUST_PROXY: '2' }],
    ['TRUST_PROXY', { TRUST_PROXY: 'proxy.internal' }],
    ['OPENAI_BASE_URL', { OPENAI_BASE_URL: 'localhost:11434' }],
    ['OPENAI_BASE_URL', { OPENAI_MODELS: 'llama3' }],
    ['LLM_TIMEOUT_S', { LLM_TIMEOUT_S: '0' }],
    ['MAX_PROMPT_CHARS', { MAX_PROMPT_CHARS: '-5' }],
    ['MAX_CONCURRENT_GENERATIONS', { MAX_CONCURRENT_GENERATIONS: '1.5' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
  ];
  for (const [name, env] of cases) {
    test(`${name}=${JSON.stringify(Object.values(env)[0])}`, () => {
      assert.throws(
        () => loadConfig({ ...base(), ...env }),
        (err: Error) => {
          assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
          assert.ok(err.message.startsWith(`${name}: `), err.message);
          assert.ok(!err.message.includes('\n'), `more than one line: ${err.message}`);
          assert.ok(err.message.length < 200, err.message);
          return true;
        },
      );
    });
  }
});

describe('OpenID Connect: the OIDC_* names, and the older GOOGLE_* ones', () => {
  const sso = { OIDC_ISSUER: 'https://sso.corp.example/realms/staff', OIDC_CLIENT_ID: 'parley', OIDC_CLIENT_SECRET: 's3cret' };

  test('OIDC_* configure any provider: named after its host unless OIDC_NAME says, domains from the verified e-mail', () => {
    const c = loadConfig({ ...base(), ...sso, OIDC_ALLOWED_DOMAINS: 'Corp.example' });
    assert.equal(c.OIDC_ISSUER, sso.OIDC_ISSUER);
    assert.equal(c.OIDC_CLIENT_ID, 'parley');
    assert.equal(c.OIDC_CLIENT_SECRET, 's3cret');
    assert.deepEqual(c.OIDC_ALLOWED_DOMAINS, ['corp.example']);
    assert.equal(c.OIDC_NAME, 'sso.corp.example');
    assert.equal(c.OIDC_DOMAIN_CLAIM, 'email');
    assert.equal(loadConfig({ ...base(), ...sso, OIDC_NAME: ' Corp SSO ', OIDC_DOMAIN_CLAIM: 'hd' }).OIDC_NAME, 'Corp SSO');
    assert.equal(loadConfig({ ...base(), ...sso, OIDC_DOMAIN_CLAIM: 'hd' }).OIDC_DOMAIN_CLAIM, 'hd');
  });

  test('GOOGLE_* keep working: Google by default, hd for the domains, the button says Google', () => {
    const c = loadConfig({ ...base(), GOOGLE_CLIENT_ID: 'id.apps.googleusercontent.com', GOOGLE_CLIENT_SECRET: 'g', GOOGLE_ALLOWED_DOMAINS: 'corp.example' });
    assert.equal(c.OIDC_ISSUER, 'https://accounts.google.com');
    assert.equal(c.OIDC_CLIENT_ID, 'id.apps.googleusercontent.com');
    assert.equal(c.OIDC_CLIENT_SECRET, 'g');
    assert.deepEqual(c.OIDC_ALLOWED_DOMAINS, ['corp.example']);
    assert.equal(c.OIDC_NAME, 'Google');
    assert.equal(c.OIDC_DOMAIN_CLAIM, 'hd');
    // The same value under both names is one setting; names can be mixed.
    const mixed = loadConfig({
      ...base(),
      ...sso,
      GOOGLE_CLIENT_ID: 'parley',
      GOOGLE_ALLOWED_DOMAINS: 'a.example,b.example',
      OIDC_ALLOWED_DOMAINS: 'A.example, b.example',
    });
    assert.equal(mixed.OIDC_CLIENT_ID, 'parley');
    assert.deepEqual(mixed.OIDC_ALLOWED_DOMAINS, ['a.example', 'b.example']);
    assert.equal(loadConfig({ ...base(), OIDC_CLIENT_ID: 'x', GOOGLE_CLIENT_SECRET: 'y' }).OIDC_CLIENT_SECRET, 'y');
  });

  test('both names set to different values: the start stops with one line naming both', () => {
    const pairs: Array<[string, string, string, string]> = [
      ['OIDC_ISSUER', 'https://sso.corp.example', 'GOOGLE_ISSUER', 'https://accounts.google.com'],
      ['OIDC_CLIENT_ID', 'parley', 'GOOGLE_CLIENT_ID', 'other'],
      ['OIDC_CLIENT_SECRET', 'a', 'GOOGLE_CLIENT_SECRET', 'b'],
      ['OIDC_ALLOWED_DOMAINS', 'corp.example', 'GOOGLE_ALLOWED_DOMAINS', 'corp.example,other.example'],
    ];
    for (const [general, a, google, b] of pairs) {
      assert.throws(
        () => loadConfig({ ...base(), ...sso, [general]: a, [google]: b }),
        (err: Error) => err instanceof ConfigError && err.message.startsWith(`${general}: ${google} `) && !err.message.includes('\n'),
        general,
      );
    }
  });
});

describe('APP_SECRET', () => {
  test('in development it is generated once into DATA_DIR, private to the owner, and reused at the next load', () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    const first = loadConfig({ DATA_DIR: dir });
    const file = path.join(dir, 'app-secret');
    assert.ok(existsSync(file));
    assert.equal(readFileSync(file, 'utf8').trim(), first.APP_SECRET);
    assert.ok(first.APP_SECRET.length >= 43, 'at least 256 bits');
    assert.equal(statSync(file).mode & 0o077, 0, 'readable by the owner only');
    assert.equal(loadConfig({ DATA_DIR: dir }).APP_SECRET, first.APP_SECRET);
    // Another data directory is another instance: another secret.
    assert.notEqual(loadConfig({ DATA_DIR: tempDir() }).APP_SECRET, first.APP_SECRET);
  });

  test('a given APP_SECRET wins and nothing is written', () => {
    const dir = tempDir();
    assert.equal(loadConfig({ DATA_DIR: dir, APP_SECRET: SECRET }).APP_SECRET, SECRET);
    assert.equal(existsSync(path.join(dir, 'app-secret')), false);
  });

  test('in production it is required, and no file is generated', () => {
    const dir = tempDir();
    assert.throws(
      () => loadConfig({ NODE_ENV: 'production', DATA_DIR: dir }),
      (err: Error) => err instanceof ConfigError && err.message === 'APP_SECRET: required when NODE_ENV is production',
    );
    assert.equal(existsSync(path.join(dir, 'app-secret')), false);
    const c = loadConfig({ NODE_ENV: 'production', DATA_DIR: dir, APP_SECRET: SECRET });
    assert.equal(c.isProduction, true);
    assert.equal(c.APP_SECRET, SECRET);
  });
});
