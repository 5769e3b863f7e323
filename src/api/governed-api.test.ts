import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import OpenAI from 'openai';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import { testDbKind } from '../../test/database.ts';
import { setModelAccess, setUserLimits } from '../groups/group-queries.ts';
import { admitPrompt, type Limits, usageStatus } from '../groups/usage-limits.ts';
import { findUserByEmail } from '../users/user-queries.ts';
import { interruptAbandonedApiCalls } from './api-call-queries.ts';
import { journalOf } from './call-journal.ts';

/**
 * /v1 under the groups' model access and the usage limits (PRODUCT.md): the same rules as chat, counted together,
 * seen through the official `openai` SDK.
 */
let w: ChatWorld;
let client: OpenAI;
let baseURL: string;
let userId: number;
const none: Limits = { prompts_per_day: null, tokens_per_day: null, tokens_per_month: null };
const db = () => w.t.database.db;
const ask = (content: string, model = 'Fake echo') => client.chat.completions.create({ model, messages: [{ role: 'user', content }] });

before(async () => {
  w = await startChatWorld();
  await w.t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = w.t.app.server.address();
  baseURL = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1`;
  await w.user.get('/settings/api-keys');
  const res = await w.user.postJson('/api/keys', { name: 'script', expires_in_days: 30 });
  assert.equal(res.statusCode, 201, res.body);
  client = new OpenAI({ baseURL, apiKey: (res.json() as { key: string }).key, maxRetries: 0 });
  userId = (await findUserByEmail(db(), 'bob@example.com'))?.id ?? 0;
});
after(async () => {
  w.t.app.server.closeAllConnections();
  await w.close();
});
beforeEach(async () => {
  await setUserLimits(db(), userId, none);
  await db().deleteFrom('chatbot_schema.usage_counter').execute();
});

const apiCallCount = async () => {
  await journalOf(db())?.flush(); // the journal writes the calls in batches
  return (await db().selectFrom('chatbot_schema.api_call').select('idapicall').execute()).length;
};
const counter = async () => {
  const row = await db()
    .selectFrom('chatbot_schema.usage_counter')
    .select(['nprompts', 'ntokens'])
    .where('idappuser', '=', userId)
    .where('txperiod', '=', 'day')
    .executeTakeFirst();
  return { prompts: Number(row?.nprompts ?? 0), tokens: Number(row?.ntokens ?? 0) };
};
/**
 * Today's use as the limits see it: the counter, or before this day's first prompt under a limit the statistics it
 * will start from (migration 031) — earlier tests' calls included, so limits below are set relative to it.
 */
const usedToday = async () => {
  const { used } = await usageStatus(db(), userId);
  return { prompts: used.promptsToday, tokens: used.tokensToday };
};
/** Every call's end is written after its answer went out: wait until none is running. */
const allEnded = () =>
  waitFor(async () => {
    await journalOf(db())?.flush();
    return (await db().selectFrom('chatbot_schema.api_call').select('idapicall').where('txstatus', '=', 'running').execute()).length === 0 ? true : undefined;
  });

const refusedFor = (status: number) => (err: unknown) => {
  assert.ok(err instanceof OpenAI.APIError, String(err));
  assert.equal(err.status, status, err.message);
  return true;
};

describe('model access', () => {
  test('a restricted model is not listed, and a completion to it is 403 with nothing recorded', async () => {
    const secret = await addModel(w.t.database, w.llm.baseUrl, 'Secret model');
    await setModelAccess(db(), secret, { restricted: true, groupIds: [] });
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['Fake echo']);

    const calls = await apiCallCount();
    const usedBefore = await usedToday();
    await assert.rejects(ask('let me in', 'Secret model'), (err: unknown) => {
      refusedFor(403)(err);
      assert.ok(err instanceof OpenAI.APIError && err.type === 'permission_error' && err.param === 'model');
      return true;
    });
    assert.equal(await apiCallCount(), calls, 'no api_call row');
    assert.deepEqual(await usedToday(), usedBefore, 'nothing counted');
  });
});

describe('usage limits', () => {
  test('prompts_per_day = 2: the third call is 429 rate_limit_exceeded, with which limit, when it resets and Retry-After', async () => {
    const start = (await usedToday()).prompts;
    await setUserLimits(db(), userId, { ...none, prompts_per_day: start + 2 });
    await ask('one');
    await ask('two');
    const calls = await apiCallCount();
    await assert.rejects(ask('three'), (err: unknown) => {
      refusedFor(429)(err);
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.match(err.message, new RegExp(`reached your limit of ${start + 2} prompts a day\\. It resets on .+ \\(UTC\\)\\.`));
      const retryAfter = Number(err.headers?.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 24 * 3600, `Retry-After: ${retryAfter}`);
      return true;
    });
    assert.equal(await apiCallCount(), calls, 'a refused call leaves no api_call row');
    await allEnded();
    assert.equal((await counter()).prompts, start + 2, 'and does not move the counter');
  });

  test('web and API share one limit: a chat prompt and an API call use up 2, the next API call is refused', async () => {
    await setUserLimits(db(), userId, { ...none, prompts_per_day: (await usedToday()).prompts + 2 });
    const web = await w.user.postJson(`/api/chats/${await newChat(w.user, w.modelId)}/messages`, { content: 'from the web' });
    assert.equal(parseSse(web.body).at(-1)?.event, 'done');
    await ask('from a script');
    await assert.rejects(ask('one more'), refusedFor(429));
    const again = await w.user.postJson(`/api/chats/${await newChat(w.user, w.modelId)}/messages`, { content: 'web again' });
    assert.equal(again.statusCode, 429, 'the web is refused too');
  });

  test('a call is settled with its real tokens; a failed one gives its prompt back', async () => {
    await setUserLimits(db(), userId, { ...none, prompts_per_day: 1000 });
    const start = await usedToday();
    const answer = await ask('count my tokens please');
    await allEnded();
    const used = (answer.usage?.prompt_tokens ?? 0) + (answer.usage?.completion_tokens ?? 0);
    assert.ok(used > 0);
    assert.deepEqual(await counter(), { prompts: start.prompts + 1, tokens: start.tokens + used }, 'the reservation replaced by what was used');
    await assert.rejects(ask('[[fail]]'), refusedFor(502));
    await allEnded();
    assert.deepEqual(await counter(), { prompts: start.prompts + 1, tokens: start.tokens + used }, 'the failed call counts nothing');

    // A call whose process died: the sweep's end settles it too (the trigger, not the relay, settles).
    const admitted = await admitPrompt(db(), { userId, modelId: w.modelId, estimatedTokens: 9 });
    assert.equal(admitted.outcome, 'ok');
    await db()
      .insertInto('chatbot_schema.api_call')
      .values({
        idappuser: userId,
        idapikey: null,
        idllm: w.modelId,
        nreserved_tokens: 9,
        dusage_day: admitted.outcome === 'ok' ? admitted.usageDay : null,
        tinf_start: sql<Date>`now() - interval '1 hour'`,
      })
      .execute();
    assert.deepEqual(await counter(), { prompts: start.prompts + 2, tokens: start.tokens + used + 9 });
    assert.equal(await interruptAbandonedApiCalls(db(), 60), 1);
    assert.deepEqual(await counter(), { prompts: start.prompts + 1, tokens: start.tokens + used }, 'the interrupted call gave its prompt and reservation back');
  });

  test(`20 calls at once with 5 left: exactly 5 answered${testDbKind === 'postgres' ? '' : ' (bites only on PostgreSQL)'}`, async () => {
    const start = (await usedToday()).prompts;
    await setUserLimits(db(), userId, { ...none, prompts_per_day: start + 5 });
    const calls = await apiCallCount();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => ask(`burst ${i}`)));
    const answered = results.filter((r) => r.status === 'fulfilled');
    assert.equal(answered.length, 5);
    for (const r of results) if (r.status === 'rejected') refusedFor(429)(r.reason);
    assert.equal((await apiCallCount()) - calls, 5, 'only the admitted calls are recorded');
    await allEnded();
    assert.equal((await counter()).prompts, start + 5);
  });
});
