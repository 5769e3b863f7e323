import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, globSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './server-process.ts';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of a test's own, in a temp directory on a free port: a test may stop and start it (a
 * restart while requests flow) without touching the machine's shared cluster, which other tests use meanwhile.
 */
export interface PrivateCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, loopback only). */
  readonly url: string;
  /** `pg_ctl stop -m <mode>`: fast ends every session with an error first; immediate is a crash (recovery at the next start). */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** The server's log so far (for assertion messages). */
  log(): Promise<string>;
  /** Stops it (if running) and deletes its directory; never throws. */
  destroy(): Promise<void>;
}

/** The newest installed server binaries (Debian's /usr/lib/postgresql/<major>/bin), else whatever is on PATH. */
function binDir(): string | undefined {
  const dirs = globSync('/usr/lib/postgresql/*/bin').filter((d) => existsSync(path.join(d, 'initdb')));
  dirs.sort((a, b) => Number(path.basename(path.dirname(b))) - Number(path.basename(path.dirname(a))));
  return dirs[0];
}

export const privateClusterAvailable = (): boolean => binDir() !== undefined;

/** PostgreSQL refuses to run as root: there the cluster belongs to the `postgres` OS user and its tools run as it. */
function asOwner(file: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

export async function startPrivateCluster(): Promise<PrivateCluster> {
  const bin = binDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (initdb, pg_ctl) found under /usr/lib/postgresql');
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const tool = (name: string, args: string[]) => {
    const [file, argv] = asOwner(path.join(bin, name), args);
    return run(file, argv, { timeout: 60_000 });
  };
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  // The socket goes into the temp directory too: nothing is shared with the machine's cluster but the binaries.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50 -c shared_buffers=16MB`;
  const start = async () => {
    await tool('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', options]);
  };
  const stop = async (mode: 'fast' | 'immediate') => {
    await tool('pg_ctl', ['stop', '-w', '-t', '60', '-m', mode, '-D', dataDir]);
  };
  try {
    await tool('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    await start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // pg_ctl daemonizes the server: it outlives a test process killed by a signal unless stopped here. `exit` handlers
  // run synchronously, so this one stops it with execFileSync; SIGINT/SIGTERM (a cancelled run) go through `exit`.
  const stopAtExit = () => {
    if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
      const [file, argv] = asOwner(path.join(bin, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', dataDir]);
      try {
        execFileSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    stopAtExit();
    process.kill(process.pid, signal);
  };
  process.once('exit', stopAtExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    log: async () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    destroy: async () => {
      process.off('exit', stopAtExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // postmaster.pid exists while a server runs on the directory (also one left by a failed stop).
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) await stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
