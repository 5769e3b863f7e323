import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, median, type Row, root } from './lib.ts';

/**
 * Time from spawning `node src/server.ts` to the first 200 from /readyz, on the embedded database:
 * the first start in an empty DATA_DIR (creates the PGlite cluster, generates the dev secret, migrates) and a
 * second start in the same directory. `npm start` also bundles web/ first; that step is timed on its own.
 */
const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 3);
const POLL_MS = 10;
const GIVE_UP_MS = 60_000;

async function timeUntilReady(dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    while (performance.now() - started < GIVE_UP_MS) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (res.status === 200) return performance.now() - started;
      } catch {
        // not listening yet
      }
      await sleep(POLL_MS);
    }
    throw new Error('the server was not ready within a minute');
  } finally {
    await stop(child);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function timeWebBuild(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['scripts/build-web.ts'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`build-web exited with ${code}`);
  return performance.now() - started;
}

export async function benchStartup(): Promise<Row[]> {
  const first: number[] = [];
  const second: number[] = [];
  const build: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-start-'));
    try {
      first.push(await timeUntilReady(dataDir));
      second.push(await timeUntilReady(dataDir));
      build.push(await timeWebBuild());
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const ms = (values: number[]) => `${Math.round(median(values))} (${values.map((v) => Math.round(v)).join(', ')})`;
  return [
    { start: 'first (empty DATA_DIR: create + migrate)', 'median ms (each round)': ms(first) },
    { start: 'second (same DATA_DIR)', 'median ms (each round)': ms(second) },
    { start: 'build:web (the step npm start runs first)', 'median ms (each round)': ms(build) },
  ];
}
