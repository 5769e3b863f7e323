import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { testDbKind } from './database.ts';
import { spawnServer, statusMiB } from './server-process.ts';

/**
 * README "Requirements": Parley on its embedded database fits a 1 GB server, first start included. The peak is what
 * kills a small server, and it depends on things no unit test sees: V8 still honouring the wasm compilation hints
 * (an experimental flag: if a Node release drops it, the hints are ignored without an error and the peak goes back
 * to ~800 MiB), and the first start loading the prebuilt cluster instead of running initdb (~1.1 GiB).
 * See docs/decisions/004. Peaks measured here on an idle machine: ~370 MiB first start, ~290 later.
 */
const PEAK_LIMIT_MIB = 512;
const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-start-memory-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('a first start (empty DATA_DIR) and a later start of `node src/server.ts` each peak under 512 MiB, without falling back', {
  skip: testDbKind === 'postgres' && 'embedded database only: ran on the PGlite run',
}, async () => {
  for (const start of ['first', 'later']) {
    const server = await spawnServer({ DATA_DIR: dataDir });
    try {
      // A page after ready: its queries are the ones V8 compiles in the background once the server is up.
      const page = await fetch(`${server.baseUrl}/login`);
      assert.equal(page.status, 200);
      await page.arrayBuffer();
      const peak = statusMiB(server.child.pid as number, 'VmHWM');
      assert.ok(peak < PEAK_LIMIT_MIB, `the ${start} start peaked at ${peak.toFixed(0)} MiB (limit ${PEAK_LIMIT_MIB}):\n${server.output()}`);
      assert.doesNotMatch(server.output(), /Starting anyway/, `the ${start} start fell back`);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }
});
