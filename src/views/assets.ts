import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Where scripts/build-web.ts writes the bundles (relative to the project root), and the name of its manifest there. */
export const BUILD_DIR = 'public/build';
export const MANIFEST_FILE = 'manifest.json';
/** Entry name (web/chat.ts → "chat") to the URL of its current, content-hashed bundle. */
export type Manifest = Record<string, string>;

const manifestPath = path.resolve(import.meta.dirname, '../..', BUILD_DIR, MANIFEST_FILE);
let manifest: Manifest | undefined;

/**
 * The URL of a browser bundle, e.g. `assetUrl('chat')` → `/static/build/chat-3FZQ2K7A.mjs`. The manifest is read once
 * per process: the bundles a server links to are those built before it started (npm start builds first). Without a
 * build this throws, so a server never starts with pages whose scripts do not exist.
 */
export function assetUrl(entry: string): string {
  manifest ??= readManifest();
  const url = manifest[entry];
  if (!url) throw new Error(`${BUILD_DIR}/${MANIFEST_FILE} has no bundle "${entry}": run \`npm run build:web\` (web/${entry}.ts).`);
  return url;
}

function readManifest(): Manifest {
  try {
    return JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`The browser bundles are not built: run \`npm run build:web\` (${manifestPath} is missing).`);
    throw err;
  }
}
