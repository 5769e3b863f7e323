import { embeddedStartOptions, readPrebuiltCluster } from './embedded-start.ts';

/**
 * `node src/db/load-prebuilt-cluster.ts <cluster.tar.gz> <directory>`: the process createClusterFromPrebuilt
 * (embedded-start.ts) runs on a first start. PGlite unpacks the cluster into the new directory and closes it;
 * the process exits and its memory (~265 MiB at most) goes back to the system.
 */
const [tarball, target] = process.argv.slice(2);
if (!tarball || !target) throw new Error('usage: load-prebuilt-cluster.ts <cluster.tar.gz> <directory>');
// Read first: a damaged file fails before PGlite and the database code are even loaded.
const cluster = readPrebuiltCluster(tarball);
const { PGlite } = await import('@electric-sql/pglite');
const { embeddedOptions } = await import('./database.ts');
const lite = new PGlite(target, { ...(await embeddedStartOptions(embeddedOptions())), loadDataDir: cluster });
await lite.waitReady;
await lite.close();
