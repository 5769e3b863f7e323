// Plain JavaScript that any old Node.js parses (no TypeScript, no newer syntax): the first step of `npm start` and
// `npm test`, so that an old `node` stops with one line saying what is needed instead of ERR_UNKNOWN_FILE_EXTENSION
// on the first .ts file. npm runs scripts with node_modules/.bin first on PATH, where `npm ci` puts Node 24 (the
// node-<os>-<arch> optional dependency) wherever the registry has one: see docs/decisions/008-node-24-from-npm.md.
const NEEDED = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < NEEDED) {
  const platforms = 'Linux x64 and arm64, macOS on Intel, Windows x64';
  console.error(
    `Parley needs Node.js ${NEEDED} or newer, but \`node\` here is ${process.version} (${process.execPath}): run \`npm ci\` first, ` +
      `which brings Node.js ${NEEDED} into node_modules/.bin on ${platforms}; elsewhere install Node.js ${NEEDED} (https://nodejs.org/en/download) and run this again.`,
  );
  process.exit(1);
}
