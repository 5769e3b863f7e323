import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { transform } from 'esbuild';
import type { ProcessMap } from '../test/summary-reporter.ts';

/**
 * Which test files share a Node process, and in which order the processes start (docs/decisions/025-suite-processes.md).
 * A file of its own pays Node's start, the app's module loading and PGlite's first open (~3 CPU s); the next file in
 * the same process pays ~0.5 s for its fresh database and app. So files share a process unless something in them
 * reaches beyond the process's own objects; each still gets its own database, app and hooks (test/file-group.ts).
 */

/** `// test-own-process: <why>` keeps a file in a process of its own, for global state no scan below can see. */
const OWN_PROCESS_MARKER = /^\/\/ test-own-process: \S/m;
/** What a file starts processes with: servers, CLIs, contenders hold ports, signals and data directories. */
const STARTS_PROCESSES = /\bnode:(child_process|worker_threads)\b|\bprocess\.execPath\b/;
/** Process-wide state a file could leave behind for the next one. */
const CHANGES_PROCESS =
  /\bprocess\.env(\.\w+|\[[^\]]+\])\s*=[^=]|\bdelete\s+process\.env\b|\bprocess\.(on|once|addListener|prependListener|chdir|umask)\(|\bmock\.timers\b/;
const RELATIVE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)['"](\.{1,2}\/[^'"]+)['"]/gm;

export const isBrowserJourney = (file: string) => file.startsWith('test/browser/') && file.endsWith('-journey.test.ts');

/** What the scan needs of one module, read once per run (a run asks about every test file, which share most modules). */
interface ModuleFacts {
  imports: string[];
  /** The text, kept only when it says `await` at all: what the top-level await check reads. */
  awaitText?: string;
  marked: boolean;
  /** Names TEST_DB, TEST_DATABASE_URL or testDbKind: its outcome can depend on the run's database (scripts/test.ts). */
  readsDatabaseKind: boolean;
  startsProcesses: boolean;
  changesProcess: boolean;
}
const facts = new Map<string, ModuleFacts>();

function factsOf(file: string): ModuleFacts {
  let found = facts.get(file);
  if (!found) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // a package, or a file that is not there
    }
    found = {
      imports: [...text.matchAll(RELATIVE_IMPORT)].flatMap(([, spec]) => (spec ? [path.resolve(path.dirname(file), spec)] : [])),
      ...(/\bawait\b/.test(text) ? { awaitText: text } : {}),
      marked: OWN_PROCESS_MARKER.test(text),
      readsDatabaseKind: /\b(TEST_DB|TEST_DATABASE_URL|testDbKind)\b/.test(text),
      startsProcesses: STARTS_PROCESSES.test(text),
      changesProcess: CHANGES_PROCESS.test(text),
    };
    facts.set(file, found);
  }
  return found;
}

/** The file and every module it reaches through relative imports, at any depth. */
export function* importedModules(file: string, dir: string): Generator<[string, ModuleFacts]> {
  const seen = new Set<string>();
  const pending = [path.resolve(dir, file)];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (seen.has(next)) continue;
    seen.add(next);
    const found = factsOf(next);
    yield [next, found];
    pending.push(...found.imports);
  }
}

/**
 * Whether a module has a top-level await, as the parser sees it (esbuild refuses one when asked for CommonJS): a
 * shared process loads each file synchronously inside its own suite (test/file-group.ts), which Node refuses for a
 * module graph with top-level await anywhere, even one under `if (import.meta.main)` that never runs. A module esbuild
 * cannot read at all counts as having one (a process of its own is always safe).
 */
const topLevelAwaits = new Map<string, Promise<boolean>>();
function hasTopLevelAwait(module: string, text: string): Promise<boolean> {
  let found = topLevelAwaits.get(module);
  if (!found) {
    const loader = /\.[mc]?tsx?$/.test(module) ? 'ts' : 'js';
    found = transform(text, { loader, format: 'cjs', logLevel: 'silent' }).then(
      () => false,
      () => true,
    );
    topLevelAwaits.set(module, found);
  }
  return found;
}

/**
 * Why each of `files` needs a process of its own; the files missing from the answer can share one. Starting
 * processes and changing the process are looked for in the file and the test helpers it imports (not in src/, whose
 * child processes are the app's own, e.g. the prebuilt cluster's loader); a top-level await anywhere it reaches.
 */
export async function ownProcessReasons(files: readonly string[], dir: string): Promise<Map<string, string>> {
  const src = path.resolve(dir, 'src');
  const reasons = new Map<string, string>();
  await Promise.all(
    files.map(async (file) => {
      if (isBrowserJourney(file)) return reasons.set(file, 'a browser journey');
      const reached = [...importedModules(file, dir)];
      for (const [module, found] of reached) {
        if (module.startsWith(`${src}${path.sep}`) && module !== path.resolve(dir, file)) continue;
        const name = path.relative(dir, module);
        if (found.marked) return reasons.set(file, `marked test-own-process in ${name}`);
        if (found.startsProcesses) return reasons.set(file, `starts processes (${name})`);
        if (found.changesProcess) return reasons.set(file, `changes process-wide state (${name})`);
      }
      const awaiting = reached.flatMap(([module, { awaitText }]) => (awaitText === undefined ? [] : [{ module, awaitText }]));
      const tla = await Promise.all(awaiting.map(({ module, awaitText }) => hasTopLevelAwait(module, awaitText)));
      const first = awaiting.find((_, i) => tla[i]);
      if (first) reasons.set(file, `top-level await in ${path.relative(dir, first.module)}`);
    }),
  );
  return reasons;
}

/** One Node process of a run: its files, whether they share it (each in a suite of its own), its expected time. */
export interface TestProcess {
  files: string[];
  shared: boolean;
  expectedMs: number;
}

/**
 * A fresh clone (CI) has no times yet: the files of their own are the suite's slowest (journeys, fuzzers, servers:
 * 20 s to 3 min each), so they start first, with shared processes of about the same expected size; a file that shares
 * takes a few seconds.
 */
export function guessMs(file: string, alone: boolean): number {
  return alone || isBrowserJourney(file) ? 60_000 : 5_000;
}

/**
 * The processes for one run, longest expected first, so that the last to start are short and the workers finish
 * together. Files that may share go into processes of about `groupMs` of work each (the longest first, each into
 * the group expected to end soonest), at least `concurrency` of them while there are files enough to keep every
 * worker busy.
 */
export function planProcesses(
  files: readonly string[],
  opts: { expectedMs: (file: string, alone: boolean) => number; alone: (file: string) => boolean; concurrency: number; groupMs: number },
): TestProcess[] {
  const processes: TestProcess[] = [];
  const sharing: Array<{ file: string; ms: number }> = [];
  for (const file of files) {
    const alone = opts.alone(file);
    const ms = opts.expectedMs(file, alone);
    if (alone) processes.push({ files: [file], shared: false, expectedMs: ms });
    else sharing.push({ file, ms });
  }
  const totalMs = sharing.reduce((sum, f) => sum + f.ms, 0);
  const groupCount = Math.min(sharing.length, Math.max(opts.concurrency, Math.ceil(totalMs / opts.groupMs)));
  const groups: TestProcess[] = Array.from({ length: groupCount }, () => ({ files: [], shared: true, expectedMs: 0 }));
  for (const { file, ms } of sharing.sort((a, b) => b.ms - a.ms || a.file.localeCompare(b.file))) {
    const shortest = groups.reduce((min, g) => (g.expectedMs < min.expectedMs ? g : min));
    shortest.files.push(file);
    shortest.expectedMs += ms;
  }
  for (const g of groups) g.files.sort();
  processes.push(...groups);
  return processes.sort((a, b) => b.expectedMs - a.expectedMs || (a.files[0] ?? '').localeCompare(b.files[0] ?? ''));
}

/**
 * Writes one entry module per process into `dir` and returns their paths in the processes' order. `node --test`
 * sorts the paths it is given, so the entries are numbered: it then starts them in this order. A shared process's
 * entry loads its files through test/file-group.ts; a process of its own just imports its file.
 */
export function writeEntries(processes: readonly TestProcess[], dir: string, root: string): { entries: string[]; map: ProcessMap } {
  mkdirSync(dir, { recursive: true });
  const fileGroup = pathToFileURL(path.resolve(import.meta.dirname, '../test/file-group.ts')).href;
  const width = String(processes.length).length;
  const entries: string[] = [];
  const map: ProcessMap = {};
  for (const [i, p] of processes.entries()) {
    const number = String(i + 1).padStart(width, '0');
    const label = p.shared ? `${p.files.length}-files` : (p.files[0] ?? '').replace(/\.test\.ts$/, '').replaceAll('/', '-');
    const entry = path.join(dir, `${number}-${label}.mjs`);
    const body = p.shared
      ? `import { runFilesInOneProcess } from ${JSON.stringify(fileGroup)};\nrunFilesInOneProcess(${JSON.stringify(root)}, ${JSON.stringify(p.files)});\n`
      : `await import(${JSON.stringify(pathToFileURL(path.resolve(root, p.files[0] ?? '')).href)});\n`;
    writeFileSync(entry, body);
    entries.push(entry);
    map[entry] = { files: p.files, shared: p.shared };
  }
  return { entries, map };
}
