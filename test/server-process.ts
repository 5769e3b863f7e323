import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OpenedDatabase, openDatabase } from '../src/db/database.ts';
import { copyPgliteTemplate, openScratchPostgres, testDbKind } from './database.ts';

const root = path.resolve(import.meta.dirname, '..');

export interface ServerProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Everything the process wrote to stdout and stderr so far (its logs), for assertion messages. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** A field of /proc/<pid>/status, in MiB: VmHWM is the most the process ever held (its peak RSS), VmRSS what it holds now. */
export function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kib) throw new Error(`no ${field} for process ${pid}`);
  return Number(kib) / 1024;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** `node src/server.ts` as `npm start` runs it, with `env` on top of a minimal environment; resolves once /readyz answers. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server was not ready within a minute:\n${output}`);
    }
    if ((await fetch(`${baseUrl}/readyz`).catch(() => undefined))?.status === 200) break;
    await sleep(50);
  }
  return { child, baseUrl, output: () => output, exited };
}

export interface Browser {
  cookie: string;
  csrf: string;
}

const cookiesOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(';')[0] ?? '');
const csrfOf = (html: string) => /<meta name="csrf-token" content="([^"]+)">/.exec(html)?.[1];

/** Registers through the real form, then opens /chat: the session cookie and CSRF token a browser would hold. */
export async function registerOver(baseUrl: string, email: string): Promise<Browser> {
  const form = await fetch(`${baseUrl}/register`);
  const token = csrfOf(await form.text());
  if (!token) throw new Error('no CSRF token on /register');
  const res = await fetch(`${baseUrl}/register`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookiesOf(form).join('; ') },
    body: new URLSearchParams({ _csrf: token, username: email.split('@')[0] ?? 'user', email, password: 'correct horse battery staple' }).toString(),
  });
  const session = cookiesOf(res).find((c) => c.startsWith('parley_session='));
  if (res.status !== 303 || !session) throw new Error(`registration answered ${res.status}`);
  const csrf = csrfOf(await (await fetch(`${baseUrl}/chat`, { headers: { cookie: session } })).text());
  if (!csrf) throw new Error('no CSRF token on /chat');
  return { cookie: session, csrf };
}

export async function postJsonOver(baseUrl: string, who: Browser, url: string, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}${url}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', cookie: who.cookie, 'x-csrf-token': who.csrf },
  });
}

/** A new user, a chat with the server's first model, and `prompt` sent: the streaming response (status 200 checked). */
export async function askOver(baseUrl: string, prompt: string): Promise<{ chatId: number; res: Response }> {
  const who = await registerOver(baseUrl, `user${Date.now()}@example.com`);
  const page = await (await fetch(`${baseUrl}/chat`, { headers: { cookie: who.cookie } })).text();
  const modelId = Number(/<option value="(\d+)"/.exec(page)?.[1]);
  const chat = (await (await postJsonOver(baseUrl, who, '/api/chats', { llm: modelId })).json()) as { id: number };
  const res = await postJsonOver(baseUrl, who, `/api/chats/${chat.id}/messages`, { content: prompt });
  if (res.status !== 200) throw new Error(`the prompt answered ${res.status}: ${await res.text()}`);
  return { chatId: chat.id, res };
}

/** Reads a text/event-stream body to its end (or until the connection breaks), calling `onEvent` per event. */
export async function readSse(res: Response, onEvent?: (event: string) => void): Promise<Array<{ event: string; data: unknown }>> {
  const events: Array<{ event: string; data: unknown }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        events.push({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') });
        onEvent?.(event);
      }
    }
  } catch {
    // A connection cut without a proper end: the caller sees which events arrived before it.
  }
  return events;
}

export interface Place {
  env: Record<string, string>;
  /** Opens the database the server used (for PGlite: only once the server has exited and unlocked it). */
  open(): Promise<OpenedDatabase>;
  cleanUp(): Promise<void>;
}

/**
 * A database for a server process: a temp DATA_DIR (PGlite) or a scratch PostgreSQL database (from
 * TEST_DATABASE_URL), per `kind` (default: this run's TEST_DB), migrated from the test template. `migrate: false`
 * leaves it empty, so the servers started on it make the cluster (PGlite) and run the migrations themselves; `prefix` names the temp directory and the database.
 */
export async function placeForServer(opts: { kind?: 'pglite' | 'postgres'; prefix?: string; migrate?: boolean } = {}): Promise<Place> {
  const prefix = opts.prefix ?? 'parley_shutdown';
  const dataDir = mkdtempSync(path.join(tmpdir(), `${prefix.replaceAll('_', '-')}-`));
  const cleanDir = async () => rmSync(dataDir, { recursive: true, force: true });
  if ((opts.kind ?? testDbKind) === 'pglite') {
    // Migrated like the PostgreSQL database below: the copied template spares the server its first-start cluster and the
    // migrations at every start. A first start on an empty DATA_DIR is what src/cli/cli.test.ts's `migrate` runs.
    if (opts.migrate ?? true) await copyPgliteTemplate(path.join(dataDir, 'pglite'));
    return { env: { DATA_DIR: dataDir }, open: () => openDatabase({ dataDir }), cleanUp: cleanDir };
  }
  const scratch = await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', prefix, opts.migrate ?? true);
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: scratch.url },
    open: async () => ({ ...scratch, close: async () => {} }),
    cleanUp: async () => {
      await scratch.close();
      await cleanDir();
    },
  };
}
