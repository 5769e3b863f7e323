import { globSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { BUILD_DIR, MANIFEST_FILE, type Manifest } from '../src/views/assets.ts';

/**
 * Bundles the browser modules in web/ into public/build/ (served at /static/build/). Fast enough to run at every start.
 * File names carry a hash of their content (chat-3FZQ2K7A.mjs), so they can be cached for a year and a deploy is still
 * seen at once: a new bundle is a new URL. manifest.json maps each entry ("chat") to its current URL for the pages
 * (src/views/assets.ts). Files of earlier builds are deleted afterwards, never before, so a running server keeps its
 * bundle until it restarts, and two builds of the same sources at once write the same names.
 */
const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, BUILD_DIR);
const entryPoints = globSync('web/*.ts', { cwd: root }).filter((f) => !f.endsWith('.test.ts'));
mkdirSync(outdir, { recursive: true });

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
const written = new Set([MANIFEST_FILE]);
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  written.add(path.basename(file));
  if (output.entryPoint) manifest[path.basename(output.entryPoint, '.ts')] = `/static/build/${path.basename(file)}`;
}

// Written whole, then renamed: a server starting meanwhile reads the old manifest or the new one, never half of one.
const manifestPath = path.join(outdir, MANIFEST_FILE);
const tmp = `${manifestPath}.${process.pid}.tmp`;
writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
renameSync(tmp, manifestPath);

for (const name of readdirSync(outdir)) {
  if (!written.has(name) && !name.endsWith('.tmp')) rmSync(path.join(outdir, name), { force: true, recursive: true });
}
if (entryPoints.length === 0) console.log('no browser modules to bundle');
