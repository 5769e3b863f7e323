import { readFileSync } from 'node:fs';
import { median } from './lib.ts';

/**
 * The server's resident memory over a soak, and whether it keeps growing.
 *
 * RSS is read from /proc/<pid>/status (VmRSS) of the spawned `node src/server.ts`, so it is the app's own memory
 * and not the load generator's. A healthy Node process under steady load still moves: the young generation fills
 * and empties many times a second, the old generation grows until a major GC, argon2 takes 19 MiB per sign-in
 * from the native heap, and V8 and glibc hand little back to the system. What they reach is a plateau; a leak is
 * a slope. So the check:
 *
 * - the first part of the run is warm-up and not judged (JIT, the pool's connections, prepared statements, caches
 *   and the heap growing to its working size): `warmUpS`, by default a third of the run;
 * - the rest is cut in two halves and the median of the second is compared with the median of the first (with the
 *   default warm-up: the last third against the middle third). A median ignores the sawtooth of the collector and
 *   a single spike (a major GC, a burst of sign-ins) in either window; equal windows of a steady load see the same
 *   mix of traffic;
 * - growth is allowed up to max(`toleranceMiB`, `toleranceFraction` × the first half's median): allocator and GC
 *   noise is a few MiB, and a fraction scales with a process that simply holds more (PGlite's WebAssembly memory).
 *
 * A leak of L MiB/s moves the medians apart by about L × (judged time) / 2, since they sit half the judged time
 * apart: over 120 s with the default warm-up, 40 s apart, so 16 MiB allowed catches leaks above 0.4 MiB/s; a
 * longer soak catches slower leaks. The slope of a least-squares line over the judged samples is reported beside
 * it, for a person to read.
 */
export interface RssSample {
  atS: number;
  mib: number;
}

export interface GrowthTolerance {
  toleranceMiB: number;
  toleranceFraction: number;
}

export interface GrowthVerdict {
  startMiB: number;
  endMiB: number;
  peakMiB: number;
  /** Medians of the first and the second half of the samples after warm-up. */
  middleMedianMiB: number;
  lastMedianMiB: number;
  growthMiB: number;
  allowedMiB: number;
  slopeMiBPerMin: number;
  growing: boolean;
  /** RSS at each tenth of the run (the nearest sample), to see the plateau or the slope at a glance. */
  tenthsMiB: number[];
}

export function readRssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kib) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) / 1024;
}

/** Samples the process's RSS every `everyMs` until stopped (a process that has gone stops the sampling). */
export function sampleRss(pid: number, everyMs: number): { samples: RssSample[]; stop(): RssSample[] } {
  const samples: RssSample[] = [];
  const started = performance.now();
  const take = () => {
    try {
      samples.push({ atS: (performance.now() - started) / 1000, mib: readRssMiB(pid) });
    } catch {
      clearInterval(timer);
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export function judgeRssGrowth(samples: RssSample[], tolerance: GrowthTolerance, warmUpS = (samples.at(-1)?.atS ?? 0) / 3): GrowthVerdict {
  const judged = samples.filter((s) => s.atS >= warmUpS);
  if (judged.length < 6) throw new Error(`too few RSS samples after warm-up (${judged.length}) to judge growth`);
  const half = Math.floor(judged.length / 2);
  const middle = judged.slice(0, half);
  const last = judged.slice(judged.length - half);
  const middleMedianMiB = median(middle.map((s) => s.mib));
  const lastMedianMiB = median(last.map((s) => s.mib));
  const growthMiB = lastMedianMiB - middleMedianMiB;
  const allowedMiB = Math.max(tolerance.toleranceMiB, tolerance.toleranceFraction * middleMedianMiB);
  return {
    startMiB: samples[0]?.mib ?? 0,
    endMiB: samples.at(-1)?.mib ?? 0,
    peakMiB: Math.max(...samples.map((s) => s.mib)),
    middleMedianMiB,
    lastMedianMiB,
    growthMiB,
    allowedMiB,
    slopeMiBPerMin: slope(judged) * 60,
    growing: growthMiB > allowedMiB,
    tenthsMiB: Array.from({ length: 11 }, (_, i) => samples[Math.min(samples.length - 1, Math.round((i * (samples.length - 1)) / 10))]?.mib ?? 0),
  };
}

/** Least-squares slope of MiB over seconds. */
function slope(samples: RssSample[]): number {
  const n = samples.length;
  const meanT = samples.reduce((a, s) => a + s.atS, 0) / n;
  const meanM = samples.reduce((a, s) => a + s.mib, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.atS - meanT) * (s.mib - meanM);
    den += (s.atS - meanT) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
