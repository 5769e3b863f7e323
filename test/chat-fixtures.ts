import type { OpenedDatabase } from '../src/db/database.ts';
import { type FakeLlm, startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { createApiKeyBox, createModel } from '../src/llm/llm-queries.ts';
import { startTestApp, TEST_SECRET, type TestApp } from './app.ts';
import { TestClient } from './client.ts';

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Parses a complete text/event-stream body into its events. */
export function parseSse(body: string): SseEvent[] {
  return body
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      return { event, data: JSON.parse(data.join('\n')) as Record<string, unknown> };
    });
}

export function tokensText(events: SseEvent[]): string {
  return events
    .filter((e) => e.event === 'token')
    .map((e) => e.data.text)
    .join('');
}

export interface ChatWorld {
  t: TestApp;
  llm: FakeLlm;
  admin: TestClient;
  user: TestClient;
  modelId: number;
  close(): Promise<void>;
}

export async function addModel(database: OpenedDatabase, baseUrl: string, name = 'Fake echo', enabled = true): Promise<number> {
  return createModel(database.db, createApiKeyBox(TEST_SECRET), { name, baseUrl, model: 'fake-echo', enabled, apiKey: null });
}

/** A fake model server, the app, an admin and a user (both signed in, on a chat page so they hold a CSRF token). */
export async function startChatWorld(env: Record<string, string> = {}): Promise<ChatWorld> {
  const llm = await startFakeLlm();
  const t = await startTestApp(env);
  const modelId = await addModel(t.database, llm.baseUrl);
  const admin = new TestClient(t.app);
  await admin.register({ username: 'Ada', email: 'ada@example.com' });
  const user = new TestClient(t.app);
  await user.register({ username: 'Bob', email: 'bob@example.com' });
  for (const c of [admin, user]) await c.get('/chat'); // the page carries the session's CSRF token
  return {
    t,
    llm,
    admin,
    user,
    modelId,
    close: async () => {
      await t.close();
      await llm.close();
    },
  };
}

export async function newChat(client: TestClient, modelId: number): Promise<number> {
  const res = await client.postJson('/api/chats', { llm: modelId });
  if (res.statusCode !== 201) throw new Error(`POST /api/chats: ${res.statusCode} ${res.body}`);
  return (res.json() as { id: number }).id;
}

/** Polls `probe` until it returns something other than undefined. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not reached in time');
}
