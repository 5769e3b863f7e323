import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { buildApp } from '../src/app.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { createSession } from '../src/auth/sessions.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { createApiKeyBox, createModel } from '../src/llm/llm-queries.ts';
import { createUser } from '../src/users/user-queries.ts';

export interface BenchUser {
  cookie: string;
  csrf: string;
}

export interface ModelServer {
  baseUrl: string;
  close(): Promise<void>;
}

/** The fake model server in a process of its own, as a real model server would be: it must not share our event loop. */
export async function spawnFakeLlm(): Promise<ModelServer> {
  const child = spawn(process.execPath, ['src/llm/fake-llm-server.ts'], { env: { ...process.env, FAKE_LLM_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
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
  makeUsers(n: number): Promise<BenchUser[]>;
  newChat(user: BenchUser): Promise<number>;
  db: Awaited<ReturnType<typeof openDatabase>>['db'];
  close(): Promise<void>;
}

/** The app listening on a loopback port, a fake model server, and users signed in without going through argon2 each time. */
export async function startChatBenchWorld(kind: 'pglite' | 'postgres', env: Record<string, string> = {}): Promise<ChatBenchWorld> {
  const llm = await spawnFakeLlm();
  let dropDatabase = async () => {};
  let opened: Awaited<ReturnType<typeof openDatabase>>;
  let lite: PGlite | undefined;
  if (kind === 'postgres') {
    const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const name = `parley_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const dbUrl = new URL(url);
    dbUrl.pathname = `/${name}`;
    opened = await openDatabase({ databaseUrl: dbUrl.toString() });
    dropDatabase = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  } else {
    lite = new PGlite('memory://');
    opened = await openDatabase({ pglite: lite });
  }
  await migrateToLatest(opened.db);
  const config = loadConfig({
    APP_SECRET: 'bench-secret-that-is-long-enough-0123456789',
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'parley-bench-')),
    LOG_LEVEL: 'silent',
    PUBLIC_URL: 'http://127.0.0.1:1',
    ...env,
  });
  const app = await buildApp({ config, db: opened.db });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address !== 'object') throw new Error('no address');
  const baseUrl = `http://127.0.0.1:${address.port}`;
  const modelId = await createModel(opened.db, createApiKeyBox(config.APP_SECRET), {
    name: 'fake',
    baseUrl: llm.baseUrl,
    model: 'fake-echo',
    enabled: true,
    apiKey: null,
  });
  const passwordHash = await hashPassword('bench password 123');

  const world: ChatBenchWorld = {
    baseUrl,
    llm,
    modelId,
    db: opened.db,
    async makeUsers(n) {
      const users: BenchUser[] = [];
      for (let i = 0; i < n; i++) {
        const { id } = await createUser(opened.db, { username: `bench${i}`, email: `bench${i}-${Date.now()}@example.com`, passwordHash });
        const token = await createSession(opened.db, id, {});
        const cookie = `parley_session=${token}`;
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
      await app.close();
      await opened.close();
      await lite?.close();
      await dropDatabase();
      await llm.close();
    },
  };
  return world;
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

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}
