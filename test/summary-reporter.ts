import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A node:test reporter for `npm test` (scripts/test.ts), used beside the `dot` reporter: it prints nothing while
 * the tests run and, at the end, writes one JSON line (a RunSummary) to its destination, from which the runner
 * prints the summary a person and CI read. It works from node:test's own events, not from reporter text.
 */

export interface FileTime {
  file: string;
  ms: number;
}

export interface Failure {
  file: string;
  /** "suite › test"; empty when the file itself failed (it did not load, or its process exited badly). */
  test: string;
  /** Why the file failed when no test in it did (a load error, an exit code, a timeout). */
  cause?: string;
  /** Stopped because the test or suite around it failed or timed out. */
  cancelled?: boolean;
}

export interface RunSummary {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  cancelled: number;
  files: number;
  ms: number;
  failures: Failure[];
  /** Every file with its wall time (the process that ran it), slowest first. */
  fileTimes: FileTime[];
}

/**
 * The runner's processes (scripts/test-processes.ts), by the path of the entry module `node --test` ran: the files
 * each ran, and whether they shared it. A shared process reports each file as a suite named by its path, declared in
 * test/file-group.ts; a process of its own reports its file under the entry's name.
 */
export type ProcessMap = Record<string, { files: string[]; shared: boolean }>;
const fileGroupModule = path.resolve(import.meta.dirname, 'file-group.ts');

/** The fields of a test:pass/test:fail/test:complete event that this reporter reads. */
interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  testId?: number;
  parentId?: number;
  skip?: boolean | string;
  todo?: boolean | string;
  details: { duration_ms: number; type?: 'suite' | 'test'; error?: { failureType?: string; cause?: unknown; message?: string } };
}

type TestEvent =
  | { type: 'test:pass' | 'test:fail' | 'test:complete'; data: TestEventData }
  | { type: 'test:summary'; data: { file?: string; duration_ms: number; counts: Record<string, number> } }
  | { type: 'test:stderr'; data: { file?: string; message: string } }
  | { type: string; data?: unknown };

/**
 * node --test reports each file once more as a test of its own at nesting 0, named by its path from the cwd, or by
 * its absolute path when it is outside the cwd (the runner's entries, in a temporary directory).
 */
function isFileLevel(data: TestEventData, cwd: string): boolean {
  return data.nesting === 0 && data.file !== undefined && (data.name === path.relative(cwd, data.file) || data.name === data.file);
}

function causeOf(data: TestEventData): string {
  const error = data.details.error;
  const cause = error?.cause;
  const text = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : (error?.message ?? 'failed');
  return text.split('\n')[0] ?? 'failed';
}

/** Why a file's suite in a shared process failed by itself: what its loading threw, named as Node prints it. */
function loadErrorOf(data: TestEventData): string {
  const cause = data.details.error?.cause;
  return cause instanceof Error ? `${cause.name}: ${cause.message.split('\n')[0]}` : causeOf(data);
}

/** Folds node:test events into a RunSummary. Exported for the runner's own tests. */
export function summarize(events: Iterable<TestEvent>, cwd: string = process.cwd(), processes: ProcessMap = {}): RunSummary {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0 };
  let ms = 0;
  const fileTimes: FileTime[] = [];
  const failedFiles = new Map<string, string>();
  // Per file, every failed test or suite by id: a suite fails when a test in it does, so only the innermost count.
  const failedTests = new Map<string, Map<number, TestEventData>>();
  // What a file wrote to stderr: the only trace of an error that stopped it before any test ran.
  const stderr = new Map<string, string[]>();
  const relative = (file: string) => path.relative(cwd, file).split(path.sep).join('/');
  const processByEntry = new Map(Object.entries(processes).map(([entry, p]) => [path.resolve(cwd, entry), p]));
  /** A path as events give it, named as the summary names it: an entry of a process of its own is its test file. */
  const nameOf = (file: string) => {
    const p = processByEntry.get(path.resolve(cwd, file));
    return p && !p.shared && p.files[0] !== undefined ? p.files[0] : relative(path.resolve(cwd, file));
  };
  // A shared process that failed as a whole (it crashed, or something failed outside every file's suite).
  const failedProcesses = new Map<string, { files: string[]; cause: string }>();

  for (const event of events) {
    if (event.type === 'test:stderr') {
      const data = event.data as { file?: string; message: string };
      if (data.file === undefined) continue;
      const file = nameOf(data.file);
      const lines = stderr.get(file) ?? [];
      if (lines.length < 200) stderr.set(file, [...lines, ...data.message.split('\n')]);
      continue;
    }
    if (event.type === 'test:summary') {
      const data = event.data as { file?: string; duration_ms: number };
      if (data.file === undefined) ms = data.duration_ms;
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail' && event.type !== 'test:complete') continue;
    const data = event.data as TestEventData;
    if (data.file === undefined) continue;
    const fileSuite = data.nesting === 0 && path.resolve(cwd, data.file) === fileGroupModule && data.details.type === 'suite';
    const shared = isFileLevel(data, cwd) ? processByEntry.get(path.resolve(cwd, data.file)) : undefined;
    if (shared?.shared) {
      if (event.type === 'test:fail') failedProcesses.set(nameOf(data.file), { files: shared.files, cause: causeOf(data) });
      continue;
    }
    const file = fileSuite ? data.name : nameOf(data.file);
    if (fileSuite || isFileLevel(data, cwd)) {
      if (event.type === 'test:complete') fileTimes.push({ file, ms: data.details.duration_ms });
      if (event.type === 'test:fail') failedFiles.set(file, fileSuite ? loadErrorOf(data) : causeOf(data));
      continue;
    }
    if (event.type === 'test:complete') continue;
    if (event.type === 'test:fail') {
      const byId = failedTests.get(file) ?? new Map<number, TestEventData>();
      failedTests.set(file, byId);
      byId.set(data.testId ?? byId.size, data);
      continue;
    }
    if (data.details.type === 'suite') continue;
    if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    else if (data.todo !== undefined && data.todo !== false) counts.todo++;
    else counts.passed++;
  }

  const failures: Failure[] = [];
  for (const [file, byId] of failedTests) {
    const parents = new Set([...byId.values()].map((d) => d.parentId));
    for (const [id, data] of byId) {
      if (parents.has(id)) continue;
      const names: string[] = [];
      for (let d: TestEventData | undefined = data; d; d = d.parentId === undefined ? undefined : byId.get(d.parentId)) names.unshift(d.name);
      const cancelled = data.details.error?.failureType === 'cancelledByParent';
      if (cancelled) counts.cancelled++;
      else counts.failed++;
      failures.push({ file, test: names.join(' › '), ...(cancelled ? { cancelled } : {}) });
    }
  }
  for (const [file, cause] of failedFiles) {
    if (failedTests.has(file)) continue;
    counts.failed++;
    const lines = stderr.get(file) ?? [];
    const error = lines.find((line) => /^\w*Error\b/.test(line));
    failures.push({ file, test: '', cause: error ?? cause });
  }
  for (const [entry, { files, cause }] of failedProcesses) {
    if (files.some((f) => failedTests.has(f) || failedFiles.has(f))) continue; // a file's own failure says it
    const finished = new Set(fileTimes.map((t) => t.file));
    const unfinished = files.filter((f) => !finished.has(f));
    const error = (stderr.get(entry) ?? []).find((line) => /^\w*Error\b/.test(line)) ?? cause;
    const notRun = unfinished.length > 1 ? `; not run: ${unfinished.slice(1).join(', ')}` : '';
    counts.failed++;
    failures.push({
      file: unfinished[0] ?? files.join(', '),
      test: '',
      cause: `${error} (its process, shared with ${files.length - 1} other files, ended${notRun})`,
    });
  }
  fileTimes.sort((a, b) => b.ms - a.ms);
  return { ...counts, files: fileTimes.length, ms, failures, fileTimes };
}

export default async function* summaryReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const events: TestEvent[] = [];
  for await (const event of source) {
    if (['test:pass', 'test:fail', 'test:complete', 'test:summary', 'test:stderr'].includes(event.type)) events.push(event);
  }
  const map = process.env.PARLEY_TEST_PROCESSES;
  const processes = map ? (JSON.parse(readFileSync(map, 'utf8')) as ProcessMap) : {};
  yield `${JSON.stringify(summarize(events, process.cwd(), processes))}\n`;
}
