import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createSession } from '../src/auth/sessions.ts';
import { addMembers, createGroup, setGroupLimits, setUserLimits } from '../src/groups/group-queries.ts';
import { admitPrompt } from '../src/groups/usage-limits.ts';
import { createApiKeyBox, createModel } from '../src/llm/llm-queries.ts';
import { createUser, grantAdmin } from '../src/users/user-queries.ts';
import { type DbKind, median, type Row, startBenchApp } from './lib.ts';

/**
 * Groups (docs/decisions/016): GET /admin/groups/:id of a group of 10,000 members (server time through app.inject:
 * session, queries, HTML), and the work the limit check adds to each prompt: admit_prompt (access, limits, the
 * reservation on the day and month counters) against a bare `SELECT 1` round trip, in the same run. In the chat it
 * runs inside begin_answer's one round trip, so its cost there is the difference of the two.
 */
const MEMBERS = Number(process.env.GROUP_BENCH_MEMBERS ?? 10_000);
const RUNS = Number(process.env.GROUP_BENCH_RUNS ?? 30);
const ADMITS = Number(process.env.GROUP_BENCH_ADMITS ?? 500);

async function timeIt(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export async function benchGroups(kind: DbKind): Promise<Row[]> {
  const world = await startBenchApp(kind);
  try {
    const db = world.database.db;
    const admin = await createUser(db, { username: 'aaa-admin', email: 'admin@example.com', passwordHash: 'x' });
    await grantAdmin(db, admin.id);
    await sql`INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
      SELECT 'member' || lpad(i::text, 6, '0'), substr(md5(i::text), 1, 12) || '@example.com', 'x' FROM generate_series(1, ${MEMBERS}) i`.execute(db);
    const group = (await createGroup(db, 'Everyone', false)) ?? 0;
    await sql`INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser)
      SELECT ${group}, idappuser FROM chatbot_schema.app_user WHERE txusername LIKE 'member%'`.execute(db);
    await sql`VACUUM ANALYZE chatbot_schema.app_user`.execute(db);
    await sql`VACUUM ANALYZE chatbot_schema.user_group_member`.execute(db);
    const cookie = `parley_session=${await createSession(db, admin.id, {})}`;
    const lastPage = Math.ceil(MEMBERS / 50);
    const rows: Row[] = [];
    for (const [name, url] of [
      ['group page 1', `/admin/groups/${group}`],
      ['middle page', `/admin/groups/${group}?page=${Math.floor(lastPage / 2)}`],
      ['last page', `/admin/groups/${group}?page=${lastPage}`],
      ['search members (member0042: 10 hits)', `/admin/groups/${group}?q=member0042`],
      ['groups list', '/admin/groups'],
    ] as const) {
      const get = async () => {
        const res = await world.app.inject({ method: 'GET', url, headers: { cookie } });
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      };
      for (let i = 0; i < 3; i++) await get();
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) times.push(await timeIt(get));
      rows.push({ database: kind, members: MEMBERS, measure: name, 'median ms': median(times).toFixed(2), 'max ms': Math.max(...times).toFixed(1) });
    }

    // The limit check: a user in three groups with limits and a restricted model, against one with none.
    const modelId = await createModel(db, createApiKeyBox('bench-secret-that-is-long-enough-0123456789'), {
      name: 'bench',
      baseUrl: 'http://127.0.0.1:9/v1',
      model: 'bench',
      enabled: true,
      apiKey: null,
    });
    const limited = await createUser(db, { username: 'limited', email: 'limited@example.com', passwordHash: 'x' });
    for (const [name, prompts] of [
      ['A', 1_000_000],
      ['B', 2_000_000],
      ['C', null],
    ] as const) {
      const g = (await createGroup(db, `limits ${name}`, false)) ?? 0;
      await setGroupLimits(db, g, { prompts_per_day: prompts, tokens_per_day: 1e12, tokens_per_month: 1e13 });
      await addMembers(db, g, [limited.id]);
    }
    await setUserLimits(db, limited.id, { prompts_per_day: null, tokens_per_day: null, tokens_per_month: 1e14 });
    const free = await createUser(db, { username: 'free', email: 'free@example.com', passwordHash: 'x' });
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['round trip: SELECT 1', () => sql`SELECT 1`.execute(db)],
      ['admit_prompt, no group, no limit', () => admitPrompt(db, { userId: free.id, modelId, estimatedTokens: 10 })],
      ['admit_prompt, 3 groups + own limit', () => admitPrompt(db, { userId: limited.id, modelId, estimatedTokens: 10 })],
    ];
    const timesOf = new Map<string, number[]>(cases.map(([n]) => [n, []]));
    for (let i = 0; i < 50; i++) for (const [, run] of cases) await run();
    // Interleaved, so a load change on the shared machine hits each case alike.
    for (let i = 0; i < ADMITS; i++) for (const [n, run] of cases) timesOf.get(n)?.push(await timeIt(run));
    const base = median(timesOf.get('round trip: SELECT 1') ?? []);
    for (const [n] of cases) {
      const m = median(timesOf.get(n) ?? []);
      rows.push({ database: kind, members: '', measure: n, 'median ms': m.toFixed(3), 'max ms': `added: ${(m - base).toFixed(3)} ms` });
    }
    return rows;
  } finally {
    await world.close();
  }
}
