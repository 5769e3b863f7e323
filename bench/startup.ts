import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { statusMiB } from '../test/server-process.ts';
import { freePort, median, type Row, registerViaForm, root } from './lib.ts';

/**
 * `node src/server.ts` on the embedded database, as `npm start` runs it: time from spawn to the first 200 from
 * /readyz, the process's peak RSS (VmHWM) and its steady RSS (after some idle seconds, a registration and a few
 * signed-in pages), for the first start in an empty DATA_DIR (creates the PGlite cluster, generates the dev secret,
 * migrates) and a later start in the same directory. `npm start` also bundles web/ first; timed on its own.
 */
const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 3);
const POLL_MS = 10;
/** A loaded machine (the benchmarks share it) can take minutes; past this the start counts as failed. */
const GIVE_UP_MS = Number(process.env.BENCH_STARTUP_GIVE_UP_S ?? 60) * 1000;

interface Start {
  readyMs: number;
  /** VmHWM of the server process at the end: the most it ever held, start included. */
  peakMiB: number;
  /** VmRSS after ready, IDLE_S idle, a registration and PAGE_REQUESTS signed-in pages, and IDLE_S again. */
  steadyMiB: number;
}

const IDLE_S = Number(process.env.BENCH_STARTUP_IDLE_S ?? 3);
const PAGE_REQUESTS = 5;

async function startOnce(dataDir: string, user: number): Promise<Start> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    let readyMs: number | undefined;
    while (readyMs === undefined) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`the server was not ready within ${GIVE_UP_MS / 1000} s`);
      const res = await fetch(`${baseUrl}/readyz`).catch(() => undefined);
      if (res?.status === 200) readyMs = performance.now() - started;
      else await sleep(POLL_MS);
    }
    const pid = child.pid as number;
    await sleep(IDLE_S * 1000);
    const signedIn = await registerViaForm(baseUrl, { username: `Bench ${user}`, email: `bench${user}@example.com`, password: 'bench password 123' });
    for (let i = 0; i < PAGE_REQUESTS; i++) {
      const page = await fetch(`${baseUrl}/chat`, { headers: { cookie: signedIn.cookie } });
      if (page.status !== 200) throw new Error(`GET /chat answered ${page.status}`);
      await page.arrayBuffer();
    }
    await sleep(IDLE_S * 1000);
    return { readyMs, steadyMiB: statusMiB(pid, 'VmRSS'), peakMiB: statusMiB(pid, 'VmHWM') };
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
  const first: Start[] = [];
  const later: Start[] = [];
  const build: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-start-'));
    try {
      first.push(await startOnce(dataDir, 2 * i));
      later.push(await startOnce(dataDir, 2 * i + 1));
      build.push(await timeWebBuild());
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const each = (values: number[], digits = 0) => `${median(values).toFixed(digits)} (${values.map((v) => v.toFixed(digits)).join(', ')})`;
  const row = (start: string, runs: Start[]): Row => ({
    start,
    'ready ms': each(runs.map((r) => r.readyMs)),
    'peak RSS MiB': each(runs.map((r) => r.peakMiB)),
    'steady RSS MiB': each(runs.map((r) => r.steadyMiB)),
  });
  return [
    row('first (empty DATA_DIR: create + migrate)', first),
    row('later (same DATA_DIR)', later),
    { start: 'build:web (the step npm start runs first)', 'ready ms': each(build) },
  ];
}
