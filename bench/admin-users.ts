import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createSession } from '../src/auth/sessions.ts';
import { createUser } from '../src/users/user-queries.ts';
import { type DbKind, median, type Row, startBenchApp } from './lib.ts';

/**
 * GET /admin/users at 100,000 users (docs/decisions/005-admin-user-list.md): the median server time (app.inject:
 * routing, session check, queries, HTML; no socket) of the pages an admin opens, against the seed's one-page query
 * (ARRAY_AGG over every user, every row sent) run in the same database.
 */
const USERS = Number(process.env.ADMIN_BENCH_USERS ?? 100_000);
const RUNS = Number(process.env.ADMIN_BENCH_RUNS ?? 30);

export async function seed(db: Parameters<typeof createUser>[0]): Promise<number> {
  const admin = await createUser(db, { username: 'aaa-admin', email: 'admin@example.com', passwordHash: 'x' });
  // One statement each: ~1 s for 100,000 users on PostgreSQL. Every 20th deactivated, every 7th with 2FA, every
  // 1,000th an admin, sign-ins and prompts spread out; e-mails are md5-ish so trigrams are not all alike.
  await sql`
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password, is_active, is_2fa_enabled, dtcreated, dtlast_login, nprompts)
    SELECT 'user' || lpad(i::text, 6, '0'), substr(md5(i::text), 1, 12) || '@example.com', 'x', i % 20 <> 0, i % 7 = 0,
           now() - make_interval(mins => i), CASE WHEN i % 3 = 0 THEN NULL ELSE now() - make_interval(secs => (i::bigint * 7919) % 2000000) END,
           ((i::bigint * 104729) % 5000)::int
    FROM generate_series(1, ${USERS - 1}) i`.execute(db);
  await sql`INSERT INTO chatbot_schema.user_role (idappuser, idrole) SELECT idappuser, 2 FROM chatbot_schema.app_user WHERE idappuser <> ${admin.id}`.execute(
    db,
  );
  await sql`INSERT INTO chatbot_schema.user_role (idappuser, idrole) SELECT idappuser, 1 FROM chatbot_schema.app_user WHERE idappuser % 1000 = 0`.execute(db);
  // What autovacuum would have done by the time anyone looks: statistics for the planner, the visibility map.
  await sql`VACUUM ANALYZE chatbot_schema.app_user`.execute(db);
  await sql`VACUUM ANALYZE chatbot_schema.user_role`.execute(db);
  return admin.id;
}

async function timeIt(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export async function benchAdminUsers(kind: DbKind): Promise<Row[]> {
  const world = await startBenchApp(kind);
  try {
    const db = world.database.db;
    const seedStarted = performance.now();
    const adminId = await seed(db);
    const seedS = (performance.now() - seedStarted) / 1000;
    const cookie = `parley_session=${await createSession(db, adminId, {})}`;
    const emailPart = (await sql<{ p: string }>`SELECT substr(md5('54321'), 3, 6) AS p`.execute(db)).rows[0]?.p ?? '';
    const lastPage = Math.ceil(USERS / 50);
    const cases: [string, string][] = [
      ['page 1', '/admin/users'],
      ['middle page', `/admin/users?page=${Math.floor(lastPage / 2)}`],
      ['last page', `/admin/users?page=${lastPage}`],
      ['search, few hits (user04242)', '/admin/users?q=user04242'],
      ['search, many hits (user01: 10,000)', '/admin/users?q=user01'],
      ['search by e-mail fragment', `/admin/users?q=${emailPart}`],
      ['2-letter search (no trigram)', '/admin/users?q=r0'],
      ['deactivated, by prompts', '/admin/users?status=deactivated&sort=prompts'],
      ['admins only', '/admin/users?role=admin'],
      ['2FA off, last sign-in, last page', `/admin/users?twofa=off&sort=last-sign-in&page=${Math.floor((lastPage * 6) / 7)}`],
    ];
    const rows: Row[] = [];
    for (const [name, url] of cases) {
      let bytes = 0;
      const get = async () => {
        const res = await world.app.inject({ method: 'GET', url, headers: { cookie } });
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        bytes = res.rawPayload.length;
      };
      for (let i = 0; i < 3; i++) await get();
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) times.push(await timeIt(get));
      rows.push({ database: kind, users: USERS, page: name, 'median ms': median(times).toFixed(1), 'max ms': Math.max(...times).toFixed(1), bytes });
    }
    // The seed's query: every user with ARRAY_AGG of roles, one page for all. Only the query, not its HTML.
    const seedQuery = () =>
      sql`SELECT u.idappuser, u.txusername, u.txemail, u.is_active, ARRAY_AGG(r.txname) AS roles
          FROM chatbot_schema.app_user u LEFT JOIN chatbot_schema.user_role ur ON u.idappuser = ur.idappuser
          LEFT JOIN chatbot_schema.role r ON ur.idrole = r.idrole GROUP BY u.idappuser ORDER BY u.txusername`.execute(db);
    await seedQuery();
    const seedTimes: number[] = [];
    for (let i = 0; i < 5; i++) seedTimes.push(await timeIt(seedQuery));
    const page1 = Number(rows[0]?.['median ms']);
    rows.push({
      database: kind,
      users: USERS,
      page: `seed's ARRAY_AGG query alone (ratio to our page 1: ${(median(seedTimes) / page1).toFixed(0)}×)`,
      'median ms': median(seedTimes).toFixed(1),
      'max ms': Math.max(...seedTimes).toFixed(1),
      bytes: '—',
    });
    rows.push({ database: kind, users: USERS, page: `(seeding ${USERS} users)`, 'median ms': `${seedS.toFixed(1)} s`, 'max ms': '', bytes: '' });
    return rows;
  } finally {
    await world.close();
  }
}
