import { createInterface } from 'node:readline';
import { lockDataDir } from '../src/db/data-dir-lock.ts';

/**
 * A process that takes DATA_DIR's lock exactly as the server and the CLI commands do (openDatabase calls
 * lockDataDir), without the seconds and the memory of opening PGlite: the data-directory lock tests start dozens.
 * `node test/data-dir-contender.ts <dir> race`: prints `ready`, takes the lock when a line arrives on stdin, prints
 * `owner` or `refused <message>`, holds what it got until stdin ends, then releases and exits.
 * `… hold`: takes the lock at once, prints the same, and holds it until killed (stdin is not read).
 */
const [dir, mode] = process.argv.slice(2);
if (!dir || (mode !== 'race' && mode !== 'hold')) throw new Error('usage: data-dir-contender.ts <dir> race|hold');

function take(): () => void {
  try {
    const lock = lockDataDir(dir as string);
    process.stdout.write('owner\n');
    return lock.release;
  } catch (err) {
    process.stdout.write(`refused ${(err as Error).message}\n`);
    return () => {};
  }
}

if (mode === 'hold') {
  take();
  setInterval(() => {}, 60_000);
} else {
  let release = () => {};
  const lines = createInterface({ input: process.stdin });
  lines.once('line', () => {
    release = take();
  });
  lines.once('close', () => release());
  process.stdout.write('ready\n');
}
