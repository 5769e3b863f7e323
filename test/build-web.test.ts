import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import Fastify from 'fastify';
import { buildWeb } from '../scripts/build-web.ts';
import { registerStaticFiles } from '../src/http/static-files.ts';

// A tab opened before a deploy or a restart holds a page naming the bundles of the build it was served with; it
// may load them (or their source maps) after the next build. They must still be there.

const root = mkdtempSync(path.join(tmpdir(), 'parley-build-web-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function buildWith(source: string): Promise<string> {
  mkdirSync(path.join(root, 'web'), { recursive: true });
  writeFileSync(path.join(root, 'web/page.ts'), source);
  const url = (await buildWeb(root)).page;
  assert.ok(url);
  return url;
}

async function served(url: string): Promise<number> {
  const app = Fastify();
  await registerStaticFiles(app, root);
  try {
    return (await app.inject({ method: 'GET', url })).statusCode;
  } finally {
    await app.close();
  }
}

test("a build keeps the previous build's bundles until the next different build, and deletes older ones", async () => {
  const first = await buildWith('console.log("first");');
  const second = await buildWith('console.log("second");');
  assert.notEqual(first, second);
  assert.equal(await served(first), 200, 'the bundle a page from before the deploy names');
  assert.equal(await served(`${first}.map`), 200);
  assert.equal(await served(second), 200);

  assert.equal(await buildWith('console.log("second");'), second, 'a restart builds the same names');
  assert.equal(await served(first), 200, 'a restart without changes is not a new build: the previous one stays');

  const third = await buildWith('console.log("third");');
  assert.equal(await served(second), 200);
  assert.equal(await served(third), 200);
  assert.equal(await served(first), 404, 'two builds ago');
  assert.equal(await served(`${first}.map`), 404);
});
