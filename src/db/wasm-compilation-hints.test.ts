import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LIFTOFF_FROM_BYTES, pgliteDistDir, V8_FLAGS, withCompilationHints } from './wasm-compilation-hints.ts';

const section = (id: number, content: number[]) => [id, content.length, ...content];
const I32_CONST = 0x41;
const DROP = 0x1a;
const END = 0x0b;

/** A module of two `() => i32` functions, `big` (a body of `bigBytes`) returning 42 and `small` 7; where its code section starts. */
function twoFunctions(bigBytes: number): { original: Uint8Array; codeAt: number } {
  const filler = Array.from({ length: Math.floor((bigBytes - 4) / 3) }, () => [I32_CONST, 1, DROP]).flat();
  const bigBody = [0, ...filler, I32_CONST, 42, END];
  const smallBody = [0, I32_CONST, 7, END];
  const u32 = (n: number) => (n < 128 ? [n] : [(n & 0x7f) | 0x80, n >> 7]);
  const code = [2, ...u32(bigBody.length), ...bigBody, ...u32(smallBody.length), ...smallBody];
  const name = (s: string) => [s.length, ...new TextEncoder().encode(s)];
  const head = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 0, 1, 0x7f]),
    ...section(3, [2, 0, 0]),
    ...section(7, [2, ...name('big'), 0, 0, ...name('small'), 0, 1]),
  ];
  return { original: Uint8Array.from([...head, 10, ...u32(code.length), ...code]), codeAt: head.length };
}

test('the hints section pins exactly the functions at or above the size, right before the code section, and the module still runs', async () => {
  const { original, codeAt } = twoFunctions(200);
  const { wasm, pinned } = withCompilationHints(original, 150);
  assert.equal(pinned, 1);
  const name = new TextEncoder().encode('compilationHints');
  const header = [0, 1 + name.length + 1 + 2, name.length, ...name, 2];
  assert.deepEqual([...wasm.subarray(codeAt, codeAt + header.length + 2)], [...header, 0x10, 0x00], 'one byte per function: 0x10 = top tier Liftoff');
  assert.deepEqual([...wasm.subarray(codeAt + header.length + 2)], [...original.subarray(codeAt)], 'the code section follows unchanged');
  const { instance } = await WebAssembly.instantiate(wasm as Uint8Array<ArrayBuffer>);
  const exports = instance.exports as { big(): number; small(): number };
  assert.deepEqual([exports.big(), exports.small()], [42, 7]);
  assert.equal(withCompilationHints(original, 1000).pinned, 0);
  assert.throws(() => withCompilationHints(wasm, 150), /already has a compilationHints section/);
});

test("PGlite's wasm: a handful of its giant functions pinned, and the hinted copy is valid", () => {
  const wasm = new Uint8Array(readFileSync(path.join(pgliteDistDir(), 'pglite.wasm')));
  const hinted = withCompilationHints(wasm);
  assert.ok(hinted.pinned >= 3 && hinted.pinned <= 50, `${hinted.pinned} functions of ${LIFTOFF_FROM_BYTES} bytes or more`);
  assert.ok(WebAssembly.validate(hinted.wasm as Uint8Array<ArrayBuffer>));
});

test("this Node's V8 still has the flags the hints need (an unknown flag is ignored with a line on stderr, and so would the hints be)", () => {
  const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
  for (const flag of V8_FLAGS) {
    const name = flag.replace(/^--(no-)?/, '');
    assert.match(options, new RegExp(`^ {2}--${name} `, 'm'), `V8 of Node ${process.version} has no --${name}: see docs/decisions/004`);
  }
});
