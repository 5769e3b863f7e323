import { existsSync, globSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/** Bundles the browser modules in web/ into public/build/ (served at /static/build/). Fast enough to run at every start. */
const root = path.resolve(import.meta.dirname, '..');
const entryPoints = globSync('web/*.ts', { cwd: root }).filter((f) => !f.endsWith('.test.ts'));
if (entryPoints.length > 0) {
  await build({
    absWorkingDir: root,
    entryPoints,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outdir: 'public/build',
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
} else if (!existsSync(path.join(root, 'public/build'))) {
  console.log('no browser modules to bundle');
}
