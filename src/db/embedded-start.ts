import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { PGliteOptions } from '@electric-sql/pglite';
import { compileHintedPglite, pgliteDistDir } from './wasm-compilation-hints.ts';

/** The version of PGlite installed, as its package.json says. */
export function installedPgliteVersion(): string {
  return (JSON.parse(readFileSync(path.join(pgliteDistDir(), '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The cluster `initdb` makes, made once by `npm run build:pglite-cluster` and shipped in the repository, for the
 * PGlite version in its name: a first start loads it instead of running `initdb`, which alone takes ~600 MiB
 * (docs/decisions/004). Only `initdb`'s output, no migration: it depends on PGlite's version and nothing of ours.
 */
export const prebuiltClusterDir = path.join(import.meta.dirname, 'prebuilt');
export const prebuiltClusterPath = (version = installedPgliteVersion()) => path.join(prebuiltClusterDir, `pglite-${version}.tar.gz`);
export const REBUILD_CLUSTER_COMMAND = 'npm run build:pglite-cluster';
const loader = path.join(import.meta.dirname, 'load-prebuilt-cluster.ts');

/**
 * A prebuilt cluster as PGlite's `loadDataDir` takes it, unpacked here rather than by PGlite: its gunzip stream
 * fails outside any promise on a damaged file, ending the process. Used by load-prebuilt-cluster.ts and the tests'
 * template (test/database.ts), which adds the migrations.
 */
export function readPrebuiltCluster(file = prebuiltClusterPath()): File {
  return new File([gunzipSync(readFileSync(file))], 'cluster.tar', { type: 'application/x-tar' });
}

/** Each reason once per process: a CLI command or a test opening several databases says it once. */
const said = new Set<string>();
function warnOnce(message: string): void {
  if (said.has(message)) return;
  said.add(message);
  console.warn(`${message}. Starting anyway; this start needs more memory (docs/decisions/004).`);
}

/**
 * What PGlite is opened with in the app (server, CLI commands, the page benchmark), on top of `options`: PostgreSQL's
 * largest wasm functions pinned to the baseline compiler. If PGlite's wasm cannot be hinted, PGlite compiles it as
 * it does by itself (a start then peaks at ~800 MiB), and the reason is printed once.
 */
export async function embeddedStartOptions(options: PGliteOptions): Promise<PGliteOptions> {
  try {
    return { ...options, pgliteWasmModule: await compileHintedPglite() };
  } catch (err) {
    warnOnce(`PGlite's wasm is compiled without compilation hints (${(err as Error).message})`);
    return options;
  }
}

/** Runs `node <script> <args>` and resolves when it exits 0; rejects with the end of its stderr otherwise. */
function runNode(script: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`exited with ${signal ?? code}: ${stderr.trim()}`))));
  });
}

/**
 * A first start's cluster, from the prebuilt one, in a short-lived process: loading it inside the server would leave
 * ~80 MB of copies of the tarball for the garbage collector, which has no reason to run for a long while (the
 * server's steady RSS stayed ~330 instead of ~270 MiB). Unpacked next to `pgdata` and renamed into place when
 * complete, so a crash while loading leaves no half cluster behind. Does nothing where a cluster (or anything else)
 * is there already; when there is no prebuilt cluster or it does not load, PGlite's own `initdb` creates the cluster
 * as before (peak ~1.1 GiB), and the reason is printed once.
 */
export async function createClusterFromPrebuilt(pgdata: string, prebuilt = prebuiltClusterPath()): Promise<void> {
  if (existsSync(pgdata) && readdirSync(pgdata).length > 0) return;
  if (!existsSync(prebuilt)) {
    warnOnce(
      `Creating the database with initdb: no prebuilt cluster for PGlite ${installedPgliteVersion()} (${prebuilt}; \`${REBUILD_CLUSTER_COMMAND}\` makes it)`,
    );
    return;
  }
  const staging = `${pgdata}.loading`;
  rmSync(staging, { recursive: true, force: true }); // from a start that crashed while loading
  try {
    await runNode(loader, [prebuilt, staging]);
    if (existsSync(pgdata)) rmdirSync(pgdata);
    renameSync(staging, pgdata);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    warnOnce(`Creating the database with initdb: the prebuilt cluster ${prebuilt} did not load (${(err as Error).message})`);
  }
}
