import assert from 'node:assert/strict';
import { execFileSync, type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

/**
 * `npm ci && npm start` on a machine whose own `node` is older than 24 (Debian 12: 18; these machines: 20).
 * npm runs scripts with node_modules/.bin first on PATH, where the node-<os>-<arch> optional dependency puts
 * Node 24; where the registry has none, `npm start` must stop with one line. See docs/decisions/008-node-24-from-npm.md.
 * .ci/run does the real thing once: a fresh `npm ci && npm start` with the machine's own node first on PATH.
 */
const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  optionalDependencies: Record<string, string>;
};

/** Each `node` on PATH older than 24 (the machine's own), found the way a shell would. */
function oldNodes(): string[] {
  const found = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    if (!dir || !existsSync(candidate) || dir.includes(`node_modules${path.sep}.bin`)) continue;
    const version = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) < 24) found.add(candidate);
  }
  for (const known of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(known)) continue;
    const version = spawnSync(known, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) < 24) found.add(known);
  }
  return [...found];
}

const old = oldNodes();

describe('an old node', { skip: old.length === 0 ? 'no node older than 24 on this machine' : false }, () => {
  for (const script of ['start', 'test'] as const) {
    test(`npm ${script} where no Node 24 was installed: one line naming the version needed and how to get it`, () => {
      const command = pkg.scripts[script];
      assert.ok(command);
      for (const node of old) {
        // What npm runs, with the old node first on PATH and no node_modules/.bin/node before it.
        const res: SpawnSyncReturns<string> = spawnSync('sh', ['-c', command], {
          cwd: root,
          encoding: 'utf8',
          env: { ...process.env, NODE_TEST_CONTEXT: '', PATH: `${path.dirname(node)}${path.delimiter}/usr/bin${path.delimiter}/bin` },
          timeout: 60_000,
        });
        assert.equal(res.status, 1, `${node}: ${res.stdout}${res.stderr}`);
        assert.equal(res.stdout, '');
        const lines = res.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, `one line, not:\n${res.stderr}`);
        assert.match(
          lines[0] ?? '',
          /^Parley needs Node\.js 24 or newer, but `node` here is v\d+\.\d+\.\d+ \(.+\): run `npm ci` first, .*https:\/\/nodejs\.org/,
        );
      }
    });
  }
});

test('npm ci brought Node 24 into node_modules/.bin on this platform, which npm scripts run first', (t) => {
  const name = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
  if (!(name in pkg.optionalDependencies)) return t.skip(`the registry has no Node 24 for ${name}`);
  const bin = path.join(root, 'node_modules/.bin', process.platform === 'win32' ? 'node.cmd' : 'node');
  assert.ok(existsSync(bin), `${bin} (npm ci installs ${name})`);
  assert.match(execFileSync(bin, ['-v'], { encoding: 'utf8' }), /^v24\./);
});
