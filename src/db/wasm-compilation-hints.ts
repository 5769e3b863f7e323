import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import v8 from 'node:v8';

/**
 * PostgreSQL's wasm functions at least this long (bytes of wasm code) stay on V8's baseline compiler, Liftoff.
 * Optimizing `raw_parser` (105 KB) takes V8's TurboFan about 600 MB of scratch memory, four others of 40–127 KB
 * 30–80 MB each, on every start (docs/decisions/004). The functions this long are 9 of PGlite 0.5.16's 13,700; the
 * page benchmark on PGlite keeps ~96 % of its throughput with them on Liftoff.
 */
export const LIFTOFF_FROM_BYTES = 30_000;

/**
 * One byte per function of V8's `compilationHints` custom section (WebAssembly compilation-hints proposal, as V8
 * 13.6 decodes it): bits 4–5 the top tier, bits 2–3 the baseline tier, bits 0–1 the strategy; 0 is "default" for
 * each. 0x10 = top tier "baseline": the function is never optimized.
 */
const HINT_DEFAULT = 0x00;
const HINT_TOP_TIER_BASELINE = 0x10;

const SECTION_CUSTOM = 0;
const SECTION_FUNCTION = 3;
const SECTION_CODE = 10;

function readU32(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let next = at;
  for (;;) {
    const byte = bytes[next++];
    if (byte === undefined) throw new Error('wasm: LEB128 runs past the end');
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next };
    shift += 7;
  }
}

function u32(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    const byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    out.push(rest > 0 ? byte | 0x80 : byte);
  } while (rest > 0);
  return out;
}

/** Each section of a wasm binary: its id, where its contents start and end. */
function sections(wasm: Uint8Array): { id: number; start: number; contentStart: number; end: number }[] {
  const found = [];
  for (let at = 8; at < wasm.length; ) {
    const id = wasm[at] as number;
    const size = readU32(wasm, at + 1);
    found.push({ id, start: at, contentStart: size.next, end: size.next + size.value });
    at = size.next + size.value;
  }
  return found;
}

/**
 * A copy of `wasm` with a `compilationHints` section pinning every function of at least `liftoffFromBytes` to
 * Liftoff, placed where V8 reads it (after the function section, right before the code section; anywhere else V8
 * ignores it). Also returns how many functions it pinned. Throws on a binary it does not understand.
 */
export function withCompilationHints(wasm: Uint8Array, liftoffFromBytes = LIFTOFF_FROM_BYTES): { wasm: Uint8Array; pinned: number } {
  const all = sections(wasm);
  const functionSection = all.find((s) => s.id === SECTION_FUNCTION);
  const code = all.find((s) => s.id === SECTION_CODE);
  if (!functionSection || !code) throw new Error('wasm: no function or code section');
  if (all.some((s) => s.id === SECTION_CUSTOM && new TextDecoder().decode(wasm.subarray(s.contentStart + 1, s.contentStart + 17)) === 'compilationHints')) {
    throw new Error('wasm: already has a compilationHints section');
  }
  const declared = readU32(wasm, functionSection.contentStart).value;
  const bodies = readU32(wasm, code.contentStart);
  if (bodies.value !== declared) throw new Error(`wasm: ${declared} functions declared, ${bodies.value} bodies`);
  const hints = new Uint8Array(declared);
  let pinned = 0;
  for (let i = 0, at = bodies.next; i < declared; i++) {
    const size = readU32(wasm, at);
    if (size.value >= liftoffFromBytes) {
      hints[i] = HINT_TOP_TIER_BASELINE;
      pinned++;
    } else hints[i] = HINT_DEFAULT;
    at = size.next + size.value;
  }
  const name = new TextEncoder().encode('compilationHints');
  const content = [...u32(name.length), ...name, ...u32(declared)];
  const header = Uint8Array.from([SECTION_CUSTOM, ...u32(content.length + declared), ...content]);
  const out = new Uint8Array(wasm.length + header.length + hints.length);
  out.set(wasm.subarray(0, code.start), 0);
  out.set(header, code.start);
  out.set(hints, code.start + header.length);
  out.set(wasm.subarray(code.start), code.start + header.length + hints.length);
  return { wasm: out, pinned };
}

/**
 * The V8 settings the hints need, process-wide. V8 reads the section only with the experimental feature on, and
 * honours a "top tier" hint only without dynamic tiering (with it, any function called often enough is optimized
 * whatever the hint says). Without dynamic tiering every other function is optimized once, in the background, the
 * first time it runs. Must run before the module is compiled. `node --experimental-wasm-compilation-hints …` would
 * do the same, but `node src/server.ts` is how the app is started (README), and NODE_OPTIONS refuses V8 flags.
 * An unknown flag only prints a line on stderr: a Node whose V8 dropped the feature ignores the hints silently,
 * which test/start-memory.test.ts catches (the start's peak goes back to ~800 MiB).
 */
export const V8_FLAGS = ['--experimental-wasm-compilation-hints', '--no-wasm-dynamic-tiering'];

/** Where PGlite's built files are (its package exports neither them nor its package.json). */
export const pgliteDistDir = () => path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));

let compiled: Promise<WebAssembly.Module> | undefined;

/** PGlite's `pglite.wasm`, hinted and compiled once per process (every PGlite instance of the process shares it). */
export function compileHintedPglite(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const hinted = withCompilationHints(new Uint8Array(await readFile(path.join(pgliteDistDir(), 'pglite.wasm'))));
    if (hinted.pinned === 0) throw new Error(`no function of pglite.wasm is ${LIFTOFF_FROM_BYTES} bytes or longer`);
    for (const flag of V8_FLAGS) v8.setFlagsFromString(flag);
    return WebAssembly.compile(hinted.wasm as Uint8Array<ArrayBuffer>);
  })();
  return compiled;
}
