import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { embeddedOptions } from '../src/db/database.ts';
import { prebuiltClusterDir, prebuiltClusterPath } from '../src/db/embedded-start.ts';
import { compileHintedPglite } from '../src/db/wasm-compilation-hints.ts';

/**
 * `npm run build:pglite-cluster`: runs PGlite's `initdb` once and keeps the cluster as
 * src/db/prebuilt/pglite-<version>.tar.gz, which a first start loads instead of running `initdb` (docs/decisions/004).
 * Run it after upgrading PGlite (src/db/embedded-start.test.ts fails until then) and commit the new file; the old
 * version's file is removed. Takes ~600 MiB and 5–30 s, here rather than on the server's first start.
 */
// With the hints, as the app runs PGlite: ~620 MiB instead of ~940.
const lite = await PGlite.create({ ...embeddedOptions(), pgliteWasmModule: await compileHintedPglite() });
const dump = await lite.dumpDataDir('gzip');
await lite.close();
mkdirSync(prebuiltClusterDir, { recursive: true });
const target = prebuiltClusterPath();
const tmp = `${target}.${process.pid}.tmp`;
writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
renameSync(tmp, target);
for (const old of readdirSync(prebuiltClusterDir)) {
  if (old.endsWith('.tar.gz') && path.join(prebuiltClusterDir, old) !== target) rmSync(path.join(prebuiltClusterDir, old));
}
console.log(`${path.relative(process.cwd(), target)}: ${(Buffer.byteLength(Buffer.from(await dump.arrayBuffer())) / 1e6).toFixed(1)} MB`);
