import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, mock, test } from 'node:test';
import { createClusterFromPrebuilt, installedPgliteVersion, prebuiltClusterDir, prebuiltClusterPath, REBUILD_CLUSTER_COMMAND } from './embedded-start.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'parley-embedded-start-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

test('the repository ships the prebuilt cluster for the installed PGlite, and only that one', () => {
  const shipped = readdirSync(prebuiltClusterDir).filter((f) => f.endsWith('.tar.gz'));
  assert.deepEqual(
    shipped,
    [path.basename(prebuiltClusterPath())],
    `PGlite ${installedPgliteVersion()} is installed but src/db/prebuilt has ${shipped.join(', ') || 'nothing'}: run \`${REBUILD_CLUSTER_COMMAND}\` and commit the file (a first start without it runs initdb, ~1.1 GiB)`,
  );
});

test('a prebuilt cluster that does not load leaves no cluster and no half-loaded directory, and says why (initdb takes over)', async (t) => {
  const warn = t.mock.method(console, 'warn', () => {});
  const damaged = path.join(scratch, 'damaged.tar.gz');
  writeFileSync(damaged, 'not a gzip file');
  const pgdata = path.join(scratch, 'data', 'pglite');
  mkdirSync(pgdata, { recursive: true });
  await createClusterFromPrebuilt(pgdata, damaged);
  assert.deepEqual(readdirSync(path.dirname(pgdata)), ['pglite']);
  assert.deepEqual(readdirSync(pgdata), []);
  assert.equal(warn.mock.callCount(), 1);
  assert.match(
    String(warn.mock.calls[0]?.arguments[0]),
    /initdb: the prebuilt cluster .*damaged\.tar\.gz did not load \(exited with 1: .*incorrect header check/s,
  );
  mock.restoreAll();
});

test('a directory that holds anything already is left to PGlite as it is', async () => {
  const pgdata = path.join(scratch, 'existing');
  mkdirSync(pgdata);
  writeFileSync(path.join(pgdata, 'PG_VERSION'), '17\n');
  await createClusterFromPrebuilt(pgdata);
  assert.deepEqual(readdirSync(pgdata), ['PG_VERSION']);
  assert.equal(existsSync(`${pgdata}.loading`), false);
});
