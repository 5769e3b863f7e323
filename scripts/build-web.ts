import { globSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { BUILD_DIR, MANIFEST_FILE, type Manifest } from '../src/views/assets.ts';

/**
 * Bundles the browser modules in web/ into public/build/ (served at /static/build/). Fast enough to run at every start.
 * File names carry a hash of their content (chat-3FZQ2K7A.mjs), so they can be cached for a year and a deploy is still
 * seen at once: a new bundle is a new URL. manifest.json maps each entry ("chat") to its current URL for the pages
 * (src/views/assets.ts).
 *
 * The files of the previous build (the last one whose files differ from this one's) are kept until the next
 * different build: a page served before a deploy or restart still finds the bundle it names, on the new server or
 * on another one of a rolling restart. Older files are deleted afterwards, never before, so two builds of the same
 * sources at once write the same names. builds.json records which files belong to the current and previous builds.
 */
const BUILDS_FILE = 'builds.json';

interface BuildRecord {
  current: string[];
  previous: string[];
}

/** Builds web/*.ts of the project at `root`; returns the manifest it wrote. */
export async function buildWeb(root: string): Promise<Manifest> {
  const outdir = path.join(root, BUILD_DIR);
  const entryPoints = globSync('web/*.ts', { cwd: root }).filter((f) => !f.endsWith('.test.ts'));
  mkdirSync(outdir, { recursive: true });
  const before = readdirSync(outdir);

  const result = await build({
    absWorkingDir: root,
    entryPoints,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outdir: BUILD_DIR,
    entryNames: '[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    metafile: true,
    logLevel: 'warning',
  });

  const manifest: Manifest = {};
  const current: string[] = [];
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    current.push(path.basename(file));
    if (output.entryPoint) manifest[path.basename(output.entryPoint, '.ts')] = `/static/build/${path.basename(file)}`;
  }
  current.sort();

  const record = readRecord(outdir);
  // Without a record (the first build that keeps one), whatever an earlier build left counts as the previous build.
  const earlier = record ?? { current: before.filter((name) => !isOwnFile(name) && !current.includes(name)), previous: [] };
  const previous = sameFiles(earlier.current, current) ? earlier.previous : earlier.current; // a restart is not a new build
  // Each written whole, then renamed: a server starting meanwhile reads the old file or the new one, never half of one.
  writeAtomically(path.join(outdir, MANIFEST_FILE), manifest);
  writeAtomically(path.join(outdir, BUILDS_FILE), { current, previous } satisfies BuildRecord);

  const kept = new Set([...current, ...previous]);
  for (const name of readdirSync(outdir)) {
    if (!kept.has(name) && !isOwnFile(name)) rmSync(path.join(outdir, name), { force: true, recursive: true });
  }
  if (entryPoints.length === 0) console.log('no browser modules to bundle');
  return manifest;
}

const isOwnFile = (name: string) => name === MANIFEST_FILE || name === BUILDS_FILE || name.endsWith('.tmp');
const sameFiles = (a: string[], b: string[]) => a.length === b.length && a.every((name) => b.includes(name));

function readRecord(outdir: string): BuildRecord | null {
  try {
    const record = JSON.parse(readFileSync(path.join(outdir, BUILDS_FILE), 'utf8')) as Partial<BuildRecord>;
    return { current: record.current ?? [], previous: record.previous ?? [] };
  } catch {
    return null; // none yet, or unreadable: treated as no record
  }
}

function writeAtomically(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

if (import.meta.main) await buildWeb(path.resolve(import.meta.dirname, '..'));
