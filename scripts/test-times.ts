import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FileTime } from '../test/summary-reporter.ts';

/**
 * Each test file's time in the last run that ran it, per database run (`.cache/test-times.json`), from which the next
 * run orders its processes longest first (scripts/test-processes.ts). A fresh clone has none and guesses.
 */
type Times = Record<string, Record<string, number>>;

function readAll(file: string): Times {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Times) : {};
  } catch {
    return {}; // none yet, or a file cut short: guess this once
  }
}

export function readTimes(file: string, run: string): Map<string, number> {
  const times = readAll(file)[run] ?? {};
  return new Map(Object.entries(times).filter(([, ms]) => typeof ms === 'number' && Number.isFinite(ms)));
}

/** Keeps the times of `measured`, and those of the other files that still exist (`npm test -- <path>` ran a few). */
export function recordTimes(file: string, run: string, measured: readonly FileTime[], existing: readonly string[]): void {
  const all = readAll(file);
  const kept = new Set(existing);
  const times = Object.fromEntries(Object.entries(all[run] ?? {}).filter(([f]) => kept.has(f)));
  for (const { file: f, ms } of measured) if (kept.has(f)) times[f] = Math.round(ms);
  all[run] = times;
  mkdirSync(path.dirname(file), { recursive: true });
  // Written whole and renamed: two runs ending together leave one complete file.
  const writing = `${file}.${process.pid}.tmp`;
  writeFileSync(writing, `${JSON.stringify(all, null, 1)}\n`);
  renameSync(writing, file);
}
