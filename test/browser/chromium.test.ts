import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_CHROMIUM_PATH, decideBrowser, isExecutableFile, skipWithoutBrowser } from './chromium.ts';

const root = path.resolve(import.meta.dirname, '../..');
const missing = '/nonexistent/chromium';
const none = () => false;

describe('whether the browser journeys run', () => {
  test('with a Chromium they run, on CHROMIUM_PATH or else /usr/bin/chromium', () => {
    const seen: string[] = [];
    const exists = (file: string) => seen.push(file) > 0;
    assert.deepEqual(decideBrowser({ CHROMIUM_PATH: '/opt/chromium/chrome' }, exists), { run: true, executablePath: '/opt/chromium/chrome' });
    assert.deepEqual(decideBrowser({}, exists), { run: true, executablePath: DEFAULT_CHROMIUM_PATH });
    assert.deepEqual(decideBrowser({ CHROMIUM_PATH: '' }, exists), { run: true, executablePath: DEFAULT_CHROMIUM_PATH });
    assert.deepEqual(seen, ['/opt/chromium/chrome', DEFAULT_CHROMIUM_PATH, DEFAULT_CHROMIUM_PATH]);
  });

  test('without one they are skipped, with a message that says how to install it', () => {
    const decision = decideBrowser({ CHROMIUM_PATH: missing }, none);
    assert.equal(decision.run, false);
    assert.ok(!decision.run);
    assert.equal(decision.required, false);
    assert.match(decision.message, /skipped/);
    assert.match(decision.message, /apt-get install -y chromium/);
    assert.match(decision.message, /CHROMIUM_PATH/);
    assert.ok(decision.message.includes(missing));
    assert.ok(!decision.message.includes('\n'), 'one line');
  });

  test('REQUIRE_BROWSER makes a missing browser a failure, not a skip', () => {
    for (const REQUIRE_BROWSER of ['1', 'true', 'yes']) {
      const decision = decideBrowser({ CHROMIUM_PATH: missing, REQUIRE_BROWSER }, none);
      assert.ok(!decision.run);
      assert.equal(decision.required, true, REQUIRE_BROWSER);
      assert.match(decision.message, /REQUIRE_BROWSER/);
    }
    for (const REQUIRE_BROWSER of ['', '0', 'false']) assert.equal(decideBrowser({ CHROMIUM_PATH: missing, REQUIRE_BROWSER }, none).run, false);
    assert.equal(skipWithoutBrowser({ CHROMIUM_PATH: missing, REQUIRE_BROWSER: '1' }), false, 'not skipped: the journey runs and fails');
    assert.match(String(skipWithoutBrowser({ CHROMIUM_PATH: missing })), /skipped/);
  });

  test('a directory or a file that cannot be executed is not a browser', () => {
    assert.equal(isExecutableFile(root), false);
    assert.equal(isExecutableFile(path.join(root, 'package.json')), false);
    assert.equal(isExecutableFile(missing), false);
    assert.equal(isExecutableFile(process.execPath), true);
  });

  // The journeys themselves, in a child process with CHROMIUM_PATH pointing at nothing.
  const journey = path.join(root, 'test/browser/auth-journey.test.ts');
  const runJourney = (env: Record<string, string>) => {
    // NODE_TEST_CONTEXT would make the child report to this runner instead of running its own tests.
    const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
    return spawnSync(process.execPath, ['--test', '--test-reporter=spec', journey], {
      cwd: root,
      encoding: 'utf8',
      env: { ...parent, REQUIRE_BROWSER: '', ...env, CHROMIUM_PATH: missing },
      timeout: 60_000,
    });
  };

  test('a journey without Chromium is skipped and passes', () => {
    const res = runJourney({});
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /auth journey in a browser .*# Browser journeys skipped: no Chromium at \/nonexistent\/chromium/);
    assert.match(res.stdout, /ℹ fail 0/);
  });

  test('a journey without Chromium fails when REQUIRE_BROWSER=1', () => {
    const res = runJourney({ REQUIRE_BROWSER: '1' });
    assert.equal(res.status, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /Browser journeys need Chromium \(REQUIRE_BROWSER is set\)/);
  });
});
