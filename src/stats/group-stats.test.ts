import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { findGroup } from '../groups/group-queries.ts';
import { groupUsage } from './group-stats.ts';
import { parseRange } from './range.ts';
import { modelDays, promptsPerUsername, sourceTotals, summarizeModels, userOverview } from './stats-queries.ts';

/**
 * /admin/stats?group= (issue 19): every figure of a group equals a recount over its members' own rows (messages,
 * answers and API calls), on generated data over ten days, web and API, in and out of the group.
 */
let t: TestApp;
let admin: TestClient;
let groupId = 0;
let members: number[] = [];
const db = () => t.database.db;

before(async () => {
  t = await startTestApp();
  admin = new TestClient(t.app);
  await admin.register({ username: 'Ada', email: 'ada@example.com' });
  await admin.get('/admin/stats');
  await sql`
    INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('m1', 'http://127.0.0.1:9/v1', 'a'), ('m2', 'http://127.0.0.1:9/v1', 'b');
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password) SELECT 'u' || i, 'u' || i || '@example.com', '' FROM generate_series(1, 6) i;
    INSERT INTO chatbot_schema.chat (idappuser, idllm)
      SELECT u.idappuser, l.idllm FROM chatbot_schema.app_user u CROSS JOIN chatbot_schema.llm l WHERE u.txusername LIKE 'u%';
    -- One prompt a day for ten days (today included) in every chat, more for the first users; answers with every status.
    INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
      SELECT c.idchat, 'p', now() - make_interval(days => d, mins => k)
      FROM chatbot_schema.chat c CROSS JOIN generate_series(0, 9) d CROSS JOIN generate_series(0, 2) k WHERE k <= c.idappuser % 3;
    INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
      SELECT m.idchat, m.idmessage, c.idllm, (ARRAY['complete', 'error', 'stopped', 'interrupted'])[1 + m.idmessage % 4],
        m.dtcreated, m.dtcreated + interval '0.2 s', m.dtcreated + make_interval(secs => 1 + m.idmessage % 5), 10 + m.idmessage % 7, 20 + m.idmessage % 11
      FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat;
    INSERT INTO chatbot_schema.api_call (idappuser, idllm, txstatus, tinf_start, tinf_end, nprompt_tokens, ncompletion_tokens)
      SELECT u.idappuser, l.idllm, CASE WHEN d % 3 = 0 THEN 'error' ELSE 'complete' END, now() - make_interval(days => d),
        now() - make_interval(days => d) + interval '2 s', 5 + d, 9 + d
      FROM chatbot_schema.app_user u CROSS JOIN chatbot_schema.llm l CROSS JOIN generate_series(0, 9) d WHERE u.txusername IN ('u2', 'u3', 'u5');
    INSERT INTO chatbot_schema.user_group (txname, nprompts_per_day, ntokens_per_month) VALUES ('Pilots', 8, 5000);
    INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser)
      SELECT g.idgroup, u.idappuser FROM chatbot_schema.user_group g, chatbot_schema.app_user u WHERE u.txusername IN ('u1', 'u2', 'u3');
  `.execute(db());
  groupId = (await sql<{ id: number }>`SELECT idgroup AS id FROM chatbot_schema.user_group`.execute(db())).rows[0]?.id ?? 0;
  members = (await sql<{ id: number }>`SELECT idappuser AS id FROM chatbot_schema.user_group_member ORDER BY 1`.execute(db())).rows.map((r) => r.id);
});
after(() => t.close());

/** The members' raw rows of a span of days (UTC), web and API: what every group figure must equal. */
async function recount(from: string, to: string) {
  const r = await sql<{ source: string; user: string; model: string; prompts: number; answers: number; failed: number; pt: number; ct: number }>`
    WITH rows AS (
      SELECT 'web' AS source, c.idappuser, c.idllm, m.dtcreated AS at, 1 AS prompt, 0 AS answer, 0 AS failed, 0 AS pt, 0 AS ct
      FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
      UNION ALL
      SELECT 'web', c.idappuser, x.idllm, x.tinf_start, 0, 1, (x.txstatus IN ('error', 'interrupted'))::int, x.nprompt_tokens, x.ncompletion_tokens
      FROM chatbot_schema.response x JOIN chatbot_schema.chat c ON c.idchat = x.idchat
      UNION ALL
      SELECT 'api', a.idappuser, a.idllm, a.tinf_start, 1, 1, (a.txstatus IN ('error', 'interrupted'))::int, a.nprompt_tokens, a.ncompletion_tokens
      FROM chatbot_schema.api_call a
    )
    SELECT rows.source, u.txusername AS user, l.txshortname AS model, sum(prompt)::int AS prompts, sum(answer)::int AS answers, sum(failed)::int AS failed,
      sum(pt)::int AS pt, sum(ct)::int AS ct
    FROM rows JOIN chatbot_schema.app_user u ON u.idappuser = rows.idappuser JOIN chatbot_schema.llm l ON l.idllm = rows.idllm
    WHERE rows.idappuser IN (SELECT idappuser FROM chatbot_schema.user_group_member WHERE idgroup = ${groupId})
      AND (rows.at AT TIME ZONE 'UTC')::date BETWEEN ${from}::date AND ${to}::date
    GROUP BY 1, 2, 3`.execute(db());
  return r.rows;
}

const total = <T>(rows: T[], f: (r: T) => number) => rows.reduce((n, r) => n + f(r), 0);

describe('figures of a group', () => {
  test('totals, prompts per user, per model and per source equal a recount over the members’ rows (7 days)', async () => {
    const range = { ...parseRange({ range: '7d' }, 'UTC'), group: groupId };
    const raw = await recount(range.from ?? '', range.to ?? '');
    const overview = await userOverview(db(), range, 100);
    assert.equal(
      overview.totals.prompts,
      total(raw, (r) => r.prompts),
    );
    assert.equal(
      overview.totals.answers,
      total(raw, (r) => r.answers),
    );
    assert.equal(
      overview.totals.failed,
      total(raw, (r) => r.failed),
    );
    assert.equal(overview.totals.activeUsers, members.length);
    assert.deepEqual(overview.users.rows.map((u) => u.username).sort(), ['u1', 'u2', 'u3'], 'only members in the user table');
    const perUser = await promptsPerUsername(db(), range);
    for (const u of perUser)
      assert.equal(
        u.prompts,
        total(
          raw.filter((r) => r.user === u.username),
          (r) => r.prompts,
        ),
        u.username,
      );

    const models = summarizeModels(await modelDays(db(), range, 'total'));
    assert.deepEqual(models.map((m) => m.model).sort(), ['m1', 'm2']);
    for (const m of models) {
      const of = raw.filter((r) => r.model === m.model);
      assert.deepEqual(
        [m.prompts, m.responses, m.errors, m.promptTokens, m.completionTokens],
        [total(of, (r) => r.prompts), total(of, (r) => r.answers), total(of, (r) => r.failed), total(of, (r) => r.pt), total(of, (r) => r.ct)],
        m.model,
      );
      assert.equal(m.avgSeconds, null, 'no timing for a group');
    }
    for (const s of await sourceTotals(db(), range)) {
      const of = raw.filter((r) => r.source === s.source);
      assert.deepEqual([s.prompts, s.answers, s.promptTokens], [total(of, (r) => r.prompts), total(of, (r) => r.answers), total(of, (r) => r.pt)], s.source);
    }
  });

  test('use against the group’s limits: today and this month, together, the busiest member, and who reached it', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const monthStart = `${today.slice(0, 8)}01`;
    const raw = await recount(today, today);
    const month = await recount(monthStart, today);
    const byUser = (rows: typeof raw, f: (r: (typeof raw)[number]) => number) => {
      const m = new Map<string, number>();
      for (const r of rows) m.set(r.user, (m.get(r.user) ?? 0) + f(r));
      return [...m.values()];
    };
    const promptsToday = byUser(raw, (r) => r.prompts);
    const tokensMonth = byUser(month, (r) => r.pt + r.ct);
    const group = await findGroup(db(), groupId);
    assert.ok(group);
    const usage = await groupUsage(db(), group);
    assert.equal(usage.members, 3);
    const of = (name: string) => usage.limits.find((l) => l.limit === name);
    assert.deepEqual(of('prompts_per_day'), {
      limit: 'prompts_per_day',
      value: 8,
      total: total(promptsToday, (n) => n),
      busiest: Math.max(...promptsToday),
      reached: promptsToday.filter((n) => n >= 8).length,
    });
    assert.deepEqual(of('tokens_per_month'), {
      limit: 'tokens_per_month',
      value: 5000,
      total: total(tokensMonth, (n) => n),
      busiest: Math.max(...tokensMonth),
      reached: tokensMonth.filter((n) => n >= 5000).length,
    });
    assert.equal(of('tokens_per_day')?.value, null);
  });
});

describe('the page and its CSV', () => {
  test('a group picked: its members only, its limits, timing said to be for all users; the CSV honours it', async () => {
    const page = await admin.get(`/admin/stats?range=7d&group=${groupId}`);
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /data-testid="group-usage"/);
    assert.match(page.body, new RegExp(`<option value="${groupId}" selected>Pilots</option>`));
    assert.match(page.body, /data-testid="timing-for-all"/);
    assert.doesNotMatch(page.body, /chart-p50/);
    assert.match(page.body, /chart-prompts/);
    assert.match(page.body, /href="\/admin\/stats\?range=30d&amp;group=\d+"/, 'the range buttons keep the group');
    assert.doesNotMatch(page.body, />u4</, 'no one outside the group');

    const csv = await admin.get(`/admin/stats?range=7d&group=${groupId}&format=csv&table=users`);
    assert.equal(csv.statusCode, 200);
    const names = csv.body
      .trim()
      .split('\r\n')
      .slice(1)
      .map((line) => line.split(',')[1])
      .sort();
    assert.deepEqual(names, ['u1', 'u2', 'u3']);
    const timing = await admin.get(`/admin/stats?range=7d&group=${groupId}&format=csv&table=average_per_model`);
    assert.equal(timing.statusCode, 400);
    assert.match(timing.body, /per model for all users/);
  });

  test('a bad group is refused with a message: not a number, unknown, repeated; other pages take none', async () => {
    const bad = await admin.get('/admin/stats?group=abc');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /group must be a group&#39;s number|group must be a group's number/);
    const unknown = await admin.get('/admin/stats?group=987654');
    assert.equal(unknown.statusCode, 404);
    assert.match(unknown.body, /This group does not exist/);
    const twice = await admin.get(`/admin/stats?group=${groupId}&group=${groupId}`);
    assert.equal(twice.statusCode, 400);
    assert.match(twice.body, /Give group once/);
    assert.equal((await admin.get(`/settings/usage?group=${groupId}`)).statusCode, 400);
    assert.equal((await admin.get('/admin/stats?group=')).statusCode, 200, 'empty: all users (the picker’s first choice)');
  });
});
