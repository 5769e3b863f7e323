import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../config.ts';

const base = { APP_SECRET: 'test-secret-that-is-long-enough-0123456789', DATA_DIR: '/tmp/parley-stats-config-test' };

test('STATS_TIMEZONE defaults to UTC and takes IANA names', () => {
  assert.equal(loadConfig(base).STATS_TIMEZONE, 'UTC');
  assert.equal(loadConfig({ ...base, STATS_TIMEZONE: 'Europe/Berlin' }).STATS_TIMEZONE, 'Europe/Berlin');
});

test('a STATS_TIMEZONE that is no zone stops the start with one line naming it', () => {
  for (const bad of ['Mars/Olympus', 'GMT+25', 'not a zone']) {
    assert.throws(
      () => loadConfig({ ...base, STATS_TIMEZONE: bad }),
      (err: unknown) => err instanceof ConfigError && /^STATS_TIMEZONE: must be an IANA time zone/.test(err.message),
      bad,
    );
  }
});
