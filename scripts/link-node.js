// `npm ci`'s last step (postinstall), plain JavaScript for any old Node.js. The node-<os>-<arch> optional dependency
// puts Node 24 in node_modules/.bin/node, which npm runs first in every script (docs/decisions/008-node-24-from-npm.md).
// npm 9 (Debian 12, Ubuntu 24.04) installs the package but leaves no link: it drops the other platforms' packages,
// which name the same bin, and their `node` link goes with them. Linked here then; nothing to do where npm did it.
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs';

const name = `node-${process.platform}-${process.arch}`;
const bin = 'node_modules/.bin/node';
if (process.platform !== 'win32' && existsSync(`node_modules/${name}/bin/node`) && !existsSync(bin)) {
  let dangling = false;
  try {
    dangling = lstatSync(bin).isSymbolicLink();
  } catch {}
  if (dangling) unlinkSync(bin);
  mkdirSync('node_modules/.bin', { recursive: true });
  symlinkSync(`../${name}/bin/node`, bin);
}
