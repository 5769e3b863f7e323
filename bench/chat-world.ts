import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashPassword } from '../src/auth/passwords.ts';
import { createSession } from '../src/auth/sessions.ts';
import type { Db } from '../src/db/database.ts';
import { createApiKeyBox, createModel } from '../src/llm/llm-queries.ts';
import { createUser } from '../src/users/user-queries.ts';
import { openScratchPostgres } from '../test/database.ts';
import { type DbKind, freePort, registerViaForm, root, type SignedIn, startBenchApp } from './lib.ts';

export interface ModelServer {
  baseUrl: string;
  close(): Promise<void>;
}

/** The fake model server in a process of its own, as a real model server would be: it must not share our event loop. */
export async function spawnFakeLlm(): Promise<ModelServer> {
  const child = spawn(process.execPath, ['src/llm/fake-llm-server.ts'], { env: { ...process.env, FAKE_LLM_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`fake model server exited with ${code}`)));
  });
  return {
    baseUrl,
    close: async () => {
      child.kill();
      await new Promise((r) => child.once('exit', r));
    },
  };
}

export interface ChatBenchWorld {
  baseUrl: string;
  llm: ModelServer;
  modelId: number;
  db: Db;
  makeUsers(n: number): Promise<SignedIn[]>;
  newChat(user: SignedIn): Promise<number>;
  close(): Promise<void>;
}

/** The app on a loopback port, a model connection to the fake server, and users signed in without argon2 each time. */
export async function startChatBenchWorld(kind: DbKind, env: Record<string, string> = {}): Promise<ChatBenchWorld> {
  const llm = await spawnFakeLlm();
  const bench = await startBenchApp(kind, env);
  const db = bench.database.db;
  const modelId = await createModel(db, createApiKeyBox(bench.config.APP_SECRET), {
    name: 'fake',
    baseUrl: llm.baseUrl,
    model: 'fake-echo',
    enabled: true,
    apiKey: null,
  });
  const passwordHash = await hashPassword('bench password 123');
  const baseUrl = bench.baseUrl;
  return {
    baseUrl,
    llm,
    modelId,
    db,
    async makeUsers(n) {
      const users: SignedIn[] = [];
      for (let i = 0; i < n; i++) {
        const { id } = await createUser(db, { username: `bench${i}`, email: `bench${i}-${Date.now()}@example.com`, passwordHash });
        const cookie = `parley_session=${await createSession(db, id, {})}`;
        const page = await fetch(`${baseUrl}/chat`, { headers: { cookie } });
        const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1];
        if (!csrf) throw new Error('no CSRF token on /chat');
        users.push({ cookie, csrf });
      }
      return users;
    },
    async newChat(user) {
      const res = await fetch(`${baseUrl}/api/chats`, {
        method: 'POST',
        body: JSON.stringify({ llm: modelId }),
        headers: { 'content-type': 'application/json', cookie: user.cookie, 'x-csrf-token': user.csrf },
      });
      if (res.status !== 201) throw new Error(`POST /api/chats: ${res.status}`);
      return ((await res.json()) as { id: number }).id;
    },
    async close() {
      await bench.close();
      await llm.close();
    },
  };
}

export interface AppProcess {
  baseUrl: string;
  user: SignedIn;
  modelId: number;
  close(): Promise<void>;
}

/**
 * The app as `npm start` runs it, in a process of its own (PGlite on disk in a temporary DATA_DIR, or a scratch
 * PostgreSQL database), its model bootstrapped from OPENAI_* and one user registered through the form: a client
 * in this process then sees what a browser would, with no work of the app's on its event loop.
 */
export async function spawnApp(kind: DbKind, llmBaseUrl: string): Promise<AppProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-app-'));
  const scratch = kind === 'postgres' ? await openScratchPostgres(process.env.TEST_DATABASE_URL ?? '', 'parley_bench') : undefined;
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      OPENAI_BASE_URL: llmBaseUrl,
      OPENAI_MODELS: 'fake-echo',
      ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await scratch?.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (let waited = 0; ; waited += 50) {
      if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}`);
      if (waited > 60_000) throw new Error('the app was not ready within a minute');
      if ((await fetch(`${baseUrl}/readyz`).catch(() => undefined))?.status === 200) break;
      await sleep(50);
    }
    const user = await registerViaForm(baseUrl, { username: 'Bench', email: 'bench@example.com', password: 'bench password 123' });
    const page = await fetch(`${baseUrl}/chat`, { headers: { cookie: user.cookie } });
    const modelId = Number(/<option value="(\d+)"/.exec(await page.text())?.[1]);
    if (!modelId) throw new Error('no model in the picker');
    return { baseUrl, user, modelId, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Reads a text/event-stream response; calls `onEvent` per event; resolves with the events when the stream ends. */
export async function readEvents(res: Response, onEvent?: (event: string, data: unknown) => void): Promise<Array<{ event: string; data: unknown }>> {
  const events: Array<{ event: string; data: unknown }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as unknown;
      events.push({ event, data });
      onEvent?.(event, data);
      cut = buffer.indexOf('\n\n');
    }
  }
  return events;
}
