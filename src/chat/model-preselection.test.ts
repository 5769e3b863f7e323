import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { addModel, type ChatWorld, newChat, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import type { TestClient } from '../../test/client.ts';
import { findModelSummary } from '../llm/llm-queries.ts';

/**
 * Issue 16 item 8: which model a new chat starts with (selectPreferredModelId, docs/decisions/010), and how answers
 * tell the admin's list that a connection broke or came back (recordAnswerOutcome).
 */
let w: ChatWorld;
let deadUrl: string;
/** "Alpha dead": enabled, pointing at a port where nothing listens; its name sorts before the world's "Fake echo". */
let dead: number;

before(async () => {
  w = await startChatWorld();
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/v1`;
  await new Promise((resolve) => probe.close(resolve));
  dead = await addModel(w.t.database, deadUrl, 'Alpha dead');
});
after(() => w.close());

const llm = () => w.t.database.db.updateTable('chatbot_schema.llm');

/** Every test starts with no health known, no default, no chats. */
beforeEach(async () => {
  await w.t.database.db.deleteFrom('chatbot_schema.chat').execute();
  await llm().set({ is_healthy: null, dthealth_checked: null, txhealth_source: null, txlast_error: null, dtlast_error: null, is_default: false }).execute();
  await llm().set({ txbase_url: deadUrl }).where('idllm', '=', dead).execute();
});

async function preselected(client: TestClient): Promise<number | null> {
  const page = await client.get('/chat');
  assert.equal(page.statusCode, 200);
  const selected = [...page.body.matchAll(/<option value="(\d+)" selected>/g)];
  assert.ok(selected.length <= 1, 'at most one option is selected');
  return selected[0] ? Number(selected[0][1]) : null;
}

async function adminPost(url: string) {
  await w.admin.get('/admin/models'); // the page's CSRF token, as a browser has it
  return w.admin.post(url);
}

/** The model's health once it reads `healthy`: answers record it after their stream has ended. */
async function healthOnceItIs(id: number, healthy: boolean) {
  return waitFor(async () => {
    const model = await findModelSummary(w.t.database.db, id);
    return model?.health.healthy === healthy ? model.health : undefined;
  });
}

async function ask(client: TestClient, chatId: number, content: string) {
  const res = await client.postJson(`/api/chats/${chatId}/messages`, { content });
  assert.equal(res.statusCode, 200, res.body);
  return res;
}

describe('the model a new chat starts with', () => {
  test('a model whose connection test failed is not preselected, although it sorts first', async () => {
    assert.equal((await adminPost(`/admin/models/${dead}/test`)).statusCode, 303);
    assert.equal(await preselected(w.user), w.modelId);
    assert.equal(await preselected(w.admin), w.modelId);
  });

  test('the user’s last-used model comes first, then the admin’s default, then the list’s order', async () => {
    await llm().set({ txbase_url: w.llm.baseUrl }).where('idllm', '=', dead).execute(); // both work now
    assert.equal(await preselected(w.user), dead, 'nothing known: the first in the list');
    assert.equal((await adminPost(`/admin/models/${w.modelId}/default`)).statusCode, 303);
    assert.equal(await preselected(w.user), w.modelId, 'the admin’s default');
    await newChat(w.user, dead);
    assert.equal(await preselected(w.user), dead, 'the user’s last-used model beats the default');
    assert.equal(await preselected(w.admin), w.modelId, 'another user still gets the default');
    await llm().set({ is_enabled: false }).where('idllm', '=', dead).execute();
    try {
      assert.equal(await preselected(w.user), w.modelId, 'a disabled last-used model: the default again');
    } finally {
      await llm().set({ is_enabled: true }).where('idllm', '=', dead).execute();
    }
  });

  test('a last-used model that failed since is passed over for a working one', async () => {
    const chat = await newChat(w.user, dead);
    await ask(w.user, chat, 'hello?'); // nothing listens: the answer fails to connect
    await healthOnceItIs(dead, false);
    assert.equal(await preselected(w.user), w.modelId);
  });
});

describe('what answers tell about a connection', () => {
  test('an answer that cannot reach its model marks it failing; a completed one marks it healthy again', async () => {
    const chat = await newChat(w.user, dead);
    await ask(w.user, chat, 'anyone there?');
    const failing = await healthOnceItIs(dead, false);
    assert.equal(failing.source, 'answer');
    assert.equal(failing.lastError, 'Could not reach the model server');
    assert.ok(failing.lastErrorAt instanceof Date);

    await llm().set({ txbase_url: w.llm.baseUrl }).where('idllm', '=', dead).execute(); // the server is back
    await ask(w.user, chat, 'and now?');
    const healthy = await healthOnceItIs(dead, true);
    assert.equal(healthy.source, 'answer');
    assert.equal(healthy.lastError, 'Could not reach the model server', 'the last error is kept');
  });

  test('a passing server error (5xx) or a refused prompt does not mark a model failing', async () => {
    const chat = await newChat(w.user, w.modelId);
    await ask(w.user, chat, 'oops [[fail]]');
    await ask(w.user, chat, 'too much [[status:400]]');
    // A completed answer is recorded (the model was never checked), after whatever the two before wrote, if anything.
    await ask(w.user, chat, 'fine now');
    const health = await healthOnceItIs(w.modelId, true);
    assert.equal(health.lastError, null, 'no failure was ever recorded');
  });
});
