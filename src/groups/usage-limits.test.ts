import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { type ChatWorld, newChat, parseSse, startChatWorld } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { testDbKind } from '../../test/database.ts';
import { findUserByEmail } from '../users/user-queries.ts';
import { addMembers, createGroup, setGroupLimits, setModelAccess, setUserLimits } from './group-queries.ts';
import { admitPrompt, type Limits, settleUsage, usageNotice, usageStatus } from './usage-limits.ts';

// Usage limits and model access on the chat path (migration 020). The burst is the point: the check and the
// reservation are one decision under the lock of the user's counter rows, so however many prompts arrive at once, on
// however many app instances and through whichever door (web or a direct admitPrompt, as the API calls it), no more
// are admitted than the limit allows.

let w: ChatWorld;
let second: TestApp;
let userId: number;
const db = () => w.t.database.db;
const none: Limits = { prompts_per_day: null, tokens_per_day: null, tokens_per_month: null };

before(async () => {
  w = await startChatWorld({ MAX_CONCURRENT_GENERATIONS: '100' });
  second = await startTestApp({ MAX_CONCURRENT_GENERATIONS: '100' }, w.t.database);
  userId = (await findUserByEmail(db(), 'bob@example.com'))?.id ?? 0;
});
after(async () => {
  await second.close();
  await w.close();
});
beforeEach(async () => {
  await setUserLimits(db(), userId, none);
  await db().deleteFrom('chatbot_schema.user_group').execute();
  await db().deleteFrom('chatbot_schema.usage_counter').execute();
  await setModelAccess(db(), w.modelId, { restricted: false, groupIds: [] });
});

const counter = async () => {
  const row = await db()
    .selectFrom('chatbot_schema.usage_counter')
    .select(['nprompts', 'ntokens'])
    .where('idappuser', '=', userId)
    .where('txperiod', '=', 'day')
    .executeTakeFirst();
  return { prompts: Number(row?.nprompts ?? 0), tokens: Number(row?.ntokens ?? 0) };
};
const messageCount = async () =>
  Number(
    (
      await db()
        .selectFrom('chatbot_schema.message as m')
        .innerJoin('chatbot_schema.chat as c', 'c.idchat', 'm.idchat')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('c.idappuser', '=', userId)
        .executeTakeFirstOrThrow()
    ).n,
  );

test(`50 prompts at once with 10 left, over two app instances and the API's admitPrompt: exactly 10 answered${testDbKind === 'postgres' ? '' : ' (bites only on PostgreSQL)'}`, async () => {
  await setUserLimits(db(), userId, { ...none, prompts_per_day: 10 });
  const chats = await Promise.all(Array.from({ length: 35 }, () => newChat(w.user, w.modelId)));
  const onSecond = new TestClient(second.app);
  for (const [k, v] of w.user.cookies) onSecond.cookies.set(k, v);
  onSecond.csrf = w.user.csrf;
  const messagesBefore = await messageCount();

  const web = chats.map((chatId, i) => (i % 2 === 0 ? w.user : onSecond).postJson(`/api/chats/${chatId}/messages`, { content: `burst ${i}` }));
  const api = Array.from({ length: 15 }, () => admitPrompt(db(), { userId, modelId: w.modelId, estimatedTokens: 3 }));
  const [webAnswers, apiAnswers] = await Promise.all([Promise.all(web), Promise.all(api)]);

  const webOk = webAnswers.filter((r) => r.statusCode === 200);
  const apiOk = apiAnswers.filter((a) => a.outcome === 'ok');
  assert.equal(webOk.length + apiOk.length, 10, 'exactly the 10 prompts left are admitted');
  assert.equal(webAnswers.length - webOk.length + apiAnswers.length - apiOk.length, 40);
  for (const r of webAnswers.filter((a) => a.statusCode !== 200)) {
    assert.equal(r.statusCode, 429);
    assert.match(r.json().error, /reached your limit of 10 prompts a day\. It resets on .+ \(UTC\)\./);
    assert.ok(Number(r.headers['retry-after']) > 0);
  }
  for (const a of apiAnswers) if (a.outcome !== 'ok') assert.equal(a.outcome === 'over_limit' && a.refusal.limit, 'prompts_per_day');
  for (const r of webOk) assert.equal(parseSse(r.body).at(-1)?.event, 'done');
  for (const a of apiOk) if (a.outcome === 'ok') await settleUsage(db(), { userId, usageDay: a.usageDay, reservedTokens: 3, tokens: 7, failed: false });

  // The counters, the stored prompts and the statistics' rollups agree.
  assert.equal((await counter()).prompts, 10);
  assert.equal((await messageCount()) - messagesBefore, webOk.length, 'refused prompts store nothing');
  const { rows } = await sql<{ n: number }>`SELECT coalesce(sum(nprompts), 0)::int AS n FROM chatbot_schema.usage_day_user WHERE idappuser = ${userId}`.execute(
    db(),
  );
  assert.equal(rows[0]?.n, messagesBefore + webOk.length);
});

test('limits resolve: the user’s own value wins; else the most generous group that sets one; else unlimited', async () => {
  const limitsNow = async () => (await usageStatus(db(), userId)).limits;
  assert.deepEqual(await limitsNow(), none, 'no group, no own limit: unlimited');
  const a = (await createGroup(db(), 'Interns', false)) ?? 0;
  const b = (await createGroup(db(), 'Staff', false)) ?? 0;
  const c = (await createGroup(db(), 'Model access only', false)) ?? 0;
  await setGroupLimits(db(), a, { prompts_per_day: 5, tokens_per_day: 1000, tokens_per_month: null });
  await setGroupLimits(db(), b, { prompts_per_day: 20, tokens_per_day: null, tokens_per_month: 50_000 });
  await addMembers(db(), a, [userId]);
  assert.deepEqual(await limitsNow(), { prompts_per_day: 5, tokens_per_day: 1000, tokens_per_month: null });
  await addMembers(db(), b, [userId]);
  await addMembers(db(), c, [userId]);
  assert.deepEqual(
    await limitsNow(),
    { prompts_per_day: 20, tokens_per_day: 1000, tokens_per_month: 50_000 },
    'the larger of each limit; a group that sets none (Model access only) does not lift the others',
  );
  await setUserLimits(db(), userId, { prompts_per_day: 3, tokens_per_day: null, tokens_per_month: null });
  assert.deepEqual(await limitsNow(), { prompts_per_day: 3, tokens_per_day: 1000, tokens_per_month: 50_000 }, 'the own value wins, even when lower');
});

/** What the user used today as the limits see it (the counter, or before it exists the statistics it will start from). */
const usedToday = async () => {
  const { used } = await usageStatus(db(), userId);
  return { prompts: used.promptsToday, tokens: used.tokensToday };
};

test('an answer settles its reservation with the real tokens; a failed answer gives its prompt back', async () => {
  await setUserLimits(db(), userId, { ...none, prompts_per_day: 1000 });
  const start = await usedToday();
  const chatId = await newChat(w.user, w.modelId);
  const ok = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'count me please' });
  assert.equal(parseSse(ok.body).at(-1)?.event, 'done');
  const reported = await db()
    .selectFrom('chatbot_schema.response')
    .select(['nprompt_tokens', 'ncompletion_tokens'])
    .where('idchat', '=', chatId)
    .executeTakeFirstOrThrow();
  assert.ok((reported.ncompletion_tokens ?? 0) > 0);
  assert.deepEqual(await counter(), { prompts: start.prompts + 1, tokens: start.tokens + (reported.nprompt_tokens ?? 0) + (reported.ncompletion_tokens ?? 0) });

  const failing = await newChat(w.user, w.modelId);
  const failed = await w.user.postJson(`/api/chats/${failing}/messages`, { content: 'this fails [[fail]]' });
  assert.equal(parseSse(failed.body).at(-1)?.event, 'error');
  assert.equal((await counter()).prompts, start.prompts + 1, 'the failed answer gave its prompt back');
});

test('a token limit refuses once the tokens used and the new estimate pass it, and /settings/usage shows it', async () => {
  // Today's earlier tests count too: the counter starts from the statistics when a limit first applies (migration 031).
  await setUserLimits(db(), userId, { prompts_per_day: null, tokens_per_day: (await usedToday()).tokens + 30, tokens_per_month: null });
  const chatId = await newChat(w.user, w.modelId);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'hello there [[long:40]]' })).statusCode, 200);
  const refused = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'again' });
  assert.equal(refused.statusCode, 429);
  const limit = (await usageStatus(db(), userId)).limits.tokens_per_day?.toLocaleString('en-US');
  assert.match(refused.json().error, new RegExp(`limit of ${limit} tokens a day`));
  const page = await w.user.get(`/chat/${chatId}`);
  assert.match(page.body, new RegExp(`id="usage-note"[^>]*>You have reached your limit of ${limit} tokens a day`));
});

test('a model restricted to a group: 403 for others (admins too), nothing stored, old chats readable, the composer says why', async () => {
  const chatId = await newChat(w.user, w.modelId);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'before' })).statusCode, 200);
  const g = (await createGroup(db(), 'Pilots', false)) ?? 0;
  await setModelAccess(db(), w.modelId, { restricted: true, groupIds: [g] });
  const before = await messageCount();
  const usedBefore = await usedToday();

  const prompt = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'after' });
  assert.equal(prompt.statusCode, 403);
  assert.match(prompt.json().error, /may not use this model/);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/regenerate`, {})).statusCode, 403);
  assert.equal((await w.user.postJson('/api/chats', { llm: w.modelId })).statusCode, 403);
  assert.equal((await w.admin.postJson('/api/chats', { llm: w.modelId })).statusCode, 403, 'admins are not exempt');
  assert.equal(await messageCount(), before, 'nothing stored');
  assert.deepEqual(await usedToday(), usedBefore, 'nothing counted');

  assert.equal((await w.user.get(`/api/chats/${chatId}`)).statusCode, 200, 'the old chat stays readable');
  const page = await w.user.get(`/chat/${chatId}`);
  assert.match(page.body, /id="model-closed-note"/);
  assert.doesNotMatch(page.body, /id="composer"/);
  assert.doesNotMatch((await w.user.get('/chat')).body, /<option value="\d+"[^>]*>Fake echo/, 'the picker does not offer it');

  await addMembers(db(), g, [userId]);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'member now' })).statusCode, 200);
  assert.match((await w.user.get('/chat')).body, /Fake echo/);
});

test('the composer’s notice: nothing above 10 % left, what is left under it, the reached limit and its reset at 0', () => {
  const status = (promptsToday: number) => ({
    limits: { prompts_per_day: 100, tokens_per_day: null, tokens_per_month: null },
    used: { promptsToday, tokensToday: 0, tokensThisMonth: 0 },
    dayResetsAt: new Date('2026-12-08T00:00:00Z'),
    monthResetsAt: new Date('2027-01-01T00:00:00Z'),
  });
  assert.equal(usageNotice(status(90), 'UTC'), null, 'exactly 10 % left: not yet');
  assert.deepEqual(usageNotice(status(93), 'UTC'), { reached: false, text: '7 prompts left today (your limit: 100 prompts a day).' });
  assert.deepEqual(usageNotice(status(100), 'Europe/Paris'), {
    reached: true,
    text: 'You have reached your limit of 100 prompts a day. It resets on 8 December 2026 at 01:00 (Europe/Paris).',
  });
});

test('no limit: the prompt touches no counter row; a limit set later starts from the day’s statistics', async () => {
  const chatId = await newChat(w.user, w.modelId);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'unlimited' })).statusCode, 200);
  const rows = await db().selectFrom('chatbot_schema.usage_counter').select('txperiod').where('idappuser', '=', userId).execute();
  assert.deepEqual(rows, [], 'no counter row locked or written without a limit (migration 031)');

  const { rows: stats } = await sql<{ n: number }>`
    SELECT coalesce(sum(nprompts), 0)::int AS n FROM chatbot_schema.usage_day_user WHERE idappuser = ${userId} AND dday = chatbot_schema.usage_day(now())`.execute(
    db(),
  );
  const today = stats[0]?.n ?? 0;
  assert.ok(today >= 1);
  assert.equal((await usedToday()).prompts, today, '/settings/usage counts the day so far before the counter exists');
  await setUserLimits(db(), userId, { ...none, prompts_per_day: today + 1 });
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'the one left' })).statusCode, 200);
  assert.equal((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'one too many' })).statusCode, 429);
  assert.equal((await counter()).prompts, today + 1);
});
