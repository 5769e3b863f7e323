import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { createSession } from '../auth/sessions.ts';
import { createUser, grantAdmin } from '../users/user-queries.ts';
import { AUDIT_ACTIONS } from './audit-queries.ts';

let t: TestApp;
let n = 0;
let admin: TestClient;
let ann: Person;
let bob: Person;

interface Person {
  id: number;
  username: string;
  email: string;
}

const db = () => t.database.db;

async function makeUser(username: string, opts: { admin?: boolean; email?: string } = {}): Promise<Person> {
  n++;
  const email = opts.email ?? `audit${n}@example.com`;
  const { id } = await createUser(db(), { username, email, passwordHash: 'x' });
  if (opts.admin) await grantAdmin(db(), id);
  return { id, username, email };
}

async function browserOf(userId: number): Promise<TestClient> {
  const c = new TestClient(t.app);
  c.cookies.set('parley_session', await createSession(db(), userId, { userAgent: 'Mozilla/5.0 Chrome/130.0', ip: '192.0.2.7' }));
  return c;
}

/** The rows' sentences as a person reads them: tags dropped, entities decoded, spaces collapsed. */
function sentences(body: string): string[] {
  return [...body.matchAll(/<td data-label="What happened"[^>]*>([\s\S]*?)<\/td>/g)].map((m) =>
    (m[1] ?? '')
      .replace(/<[^>]*>/g, '')
      .replace(/&#39;/g, "'")
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

before(async () => {
  t = await startTestApp();
  ann = await makeUser('Ann Admin', { admin: true, email: 'ann@example.com' });
  bob = await makeUser('Bob Builder', { email: 'bob@example.com' });
  admin = await browserOf(ann.id);
  await admin.get('/admin/users');
  // Ann promotes Bob, then demotes him, through the pages (so the rows are what the app writes).
  assert.equal((await admin.post(`/admin/users/${bob.id}/promote`)).statusCode, 303);
  assert.equal((await admin.post(`/admin/users/${bob.id}/demote`)).statusCode, 303);
});
after(async () => {
  await t.close();
});

const NO_USER_TARGET = /-model$|^model-access$|^(create|update|delete)-group$|^group-limits$/;

describe('GET /admin/audit: readable sentences', () => {
  test('role changes read as sentences with linked names', async () => {
    const res = await admin.get(`/admin/audit?user=${encodeURIComponent('bob@example.com')}`);
    assert.equal(res.statusCode, 200);
    const said = sentences(res.body);
    assert.deepEqual(said.slice(0, 2), [
      'Ann Admin changed the role of Bob Builder from Admin to User.',
      'Ann Admin changed the role of Bob Builder from User to Admin.',
    ]);
    assert.match(res.body, new RegExp(`<a href="/admin/users/${ann.id}">Ann Admin</a> changed the role of <a href="/admin/users/${bob.id}">Bob Builder</a>`));
  });

  test('a bulk action says so; a removed account reads as removed', async () => {
    const c1 = await makeUser('Carl Bulk');
    const c2 = await makeUser('Dora Bulk');
    const form = new URLSearchParams({ _csrf: admin.csrf, action: 'deactivate' });
    form.append('ids', String(c1.id));
    form.append('ids', String(c2.id));
    const bulk = await admin.app.inject({
      method: 'POST',
      url: '/admin/users/bulk',
      payload: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
    });
    assert.equal(bulk.statusCode, 303, bulk.body);
    const page = await admin.get(`/admin/audit?user=${encodeURIComponent('Dora Bulk')}`);
    assert.equal(page.statusCode, 200);
    assert.deepEqual(sentences(page.body), [
      'Ann Admin deactivated Dora Bulk: signed out everywhere, running answers stopped (one of 2 accounts in one bulk action).',
    ]);
    await db().deleteFrom('chatbot_schema.app_user').where('idappuser', '=', c2.id).execute();
    const gone = await admin.get('/admin/audit?action=deactivate');
    assert.ok(
      sentences(gone.body).includes(
        'Ann Admin deactivated Dora Bulk (account removed): signed out everywhere, running answers stopped (one of 2 accounts in one bulk action).',
      ),
    );
  });

  test('every action the code writes has its own sentence (not the fallback)', async () => {
    for (const action of AUDIT_ACTIONS) {
      // Model and group actions name no user (writeAudit's targets are null for them).
      const target = NO_USER_TARGET.test(action) ? { idtarget: null, txtarget: null } : { idtarget: bob.id, txtarget: bob.username };
      await db()
        .insertInto('chatbot_schema.admin_audit')
        .values({ idactor: ann.id, txactor: ann.username, ...target, txaction: action, jsdetails: '{}', txip: null })
        .execute();
      const res = await admin.get(`/admin/audit?action=${action}`);
      assert.equal(res.statusCode, 200);
      const [first] = sentences(res.body);
      // A refused passkey sign-in is the system's finding, not an admin's act: its sentence names no actor.
      const opening = action === 'passkey-counter-regressed' ? 'A passkey sign-in of Bob Builder ' : 'Ann Admin ';
      assert.ok(first?.startsWith(opening), `${action}: ${first}`);
      assert.doesNotMatch(first ?? '', /did “/, `${action} has no sentence of its own`);
    }
  });

  test('rows on phone width: table-stack, every cell labelled', async () => {
    const res = await admin.get('/admin/audit');
    assert.match(res.body, /<table class="table[^"]*table-stack/);
    const cells = [...res.body.matchAll(/<td\b[^>]*>/g)].map((m) => m[0]);
    assert.ok(cells.length > 0);
    for (const cell of cells) assert.match(cell, /data-label="[^"]+"/);
  });
});

describe('GET /admin/audit: filter by name or e-mail', () => {
  test('by e-mail, by part of a name, case-insensitive; the old numeric ids still work', async () => {
    for (const q of ['bob@example.com', 'BOB BUILDER', 'builder']) {
      const res = await admin.get(`/admin/audit?user=${encodeURIComponent(q)}`);
      assert.equal(res.statusCode, 200, q);
      assert.ok(sentences(res.body).length >= 2, q);
      assert.ok(
        sentences(res.body).every((s) => s.includes('Bob Builder')),
        q,
      );
    }
    const byAdmin = await admin.get('/admin/audit?admin=ann');
    assert.equal(byAdmin.statusCode, 200);
    assert.ok(sentences(byAdmin.body).every((s) => s.startsWith('Ann Admin') || s.startsWith('A passkey sign-in of ')));
    const legacy = await admin.get(`/admin/audit?target=${bob.id}`);
    assert.equal(legacy.statusCode, 200);
    assert.ok(sentences(legacy.body).every((s) => s.includes('Bob Builder')));
    assert.match(legacy.body, /name="user"[^>]*value="bob@example.com"/, 'the field shows whom the id means');
  });

  test('unknown or ambiguous names: 400, the page again, the message beside the field', async () => {
    await makeUser('Eve Twin');
    await makeUser('Eve Twain');
    const unknown = await admin.get('/admin/audit?user=nobody-like-this');
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.body, /id="f-user"[^>]*aria-describedby="f-user-error"/);
    assert.match(unknown.body, /id="f-user-error"[^>]*>No account matches “nobody-like-this”/);
    const short = await admin.get('/admin/audit?user=zq');
    assert.equal(short.statusCode, 400);
    assert.match(short.body, /No account is named “zq”: type at least 3 characters/);
    assert.equal((await admin.get('/admin/audit?user=Al')).statusCode, 400, 'no account named Al yet');
    await makeUser('Al');
    assert.equal((await admin.get('/admin/audit?user=al')).statusCode, 200, 'a short name that is a whole name');
    const ambiguous = await admin.get('/admin/audit?admin=eve%20tw');
    assert.equal(ambiguous.statusCode, 400);
    assert.match(ambiguous.body, /id="f-admin-error"[^>]*>“eve tw” matches 2 accounts/);
    assert.match(ambiguous.body, /Eve Twin/);
    const noId = await admin.get('/admin/audit?actor=999999');
    assert.equal(noId.statusCode, 400);
    assert.match(noId.body, /No account has the id 999999/);
  });

  test('repeated or bad parameters: 400 with a message', async () => {
    for (const url of [
      '/admin/audit?user=a&user=b',
      '/admin/audit?page=0',
      '/admin/audit?action=nope',
      `/admin/audit?user=${'x'.repeat(300)}`,
      '/admin/audit?target=abc',
    ]) {
      const res = await admin.get(url);
      assert.equal(res.statusCode, 400, url);
      assert.match(res.body, /must|enter at most|once|one of/, url);
    }
  });

  test('autocomplete: a server-rendered datalist of the people in the log', async () => {
    const res = await admin.get('/admin/audit');
    assert.match(res.body, /<input[^>]*name="user"[^>]*list="people-user"/);
    assert.match(res.body, /<datalist id="people-user">[\s\S]*<option value="bob@example.com">Bob Builder<\/option>/);
    assert.match(res.body, /<datalist id="people-admin">[\s\S]*<option value="ann@example.com">Ann Admin<\/option>/);
  });
});

describe('GET /admin/audit?format=csv', () => {
  test('keeps its columns and adds a readable summary', async () => {
    const res = await admin.get(`/admin/audit?format=csv&user=${encodeURIComponent('bob@example.com')}`);
    assert.equal(res.statusCode, 200);
    const [head, ...lines] = res.body.trim().split('\r\n');
    assert.equal(head, 'id,time_utc,admin_id,admin,action,user_id,user,details,ip,summary');
    assert.ok(
      lines.some((l) => l.endsWith(',Ann Admin changed the role of Bob Builder from User to Admin.')),
      lines.join('\n'),
    );
  });
});

describe('unexpected details never break the page', () => {
  // Strings that would be markup if printed raw; JSONB refuses NUL, so none here.
  const marker = fc.constantFrom('<x-evil>', '"><x-evil>', "'<x-evil a='", '&lt;x-evil&gt;', '</td><x-evil>');
  const text = fc.oneof(
    fc.string().filter((s) => !s.includes('\u0000')),
    marker,
  );
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      text,
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(true, false, null),
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(fc.oneof(text, fc.constantFrom('id', 'name', 'role', 'signIn', 'bulk', 'outcome', 'apiKey', 'validMinutes', 'baseUrl')), tie('value'), {
        maxKeys: 4,
      }),
    ),
  })).value;

  test('any details JSON, any action, any snapshot name: 200 and no markup from the data', async () => {
    await fc.assert(
      fc.asyncProperty(
        json,
        fc.oneof(fc.constantFrom(...AUDIT_ACTIONS), text),
        fc.oneof(text, fc.constant('')),
        fc.boolean(),
        async (details, action, name, withTarget) => {
          await db().deleteFrom('chatbot_schema.admin_audit').where('txip', '=', 'property').execute();
          await db()
            .insertInto('chatbot_schema.admin_audit')
            .values({
              idactor: null,
              txactor: name,
              idtarget: withTarget ? bob.id : null,
              txtarget: withTarget ? name : null,
              txaction: action,
              jsdetails: JSON.stringify(details),
              txip: 'property',
            })
            .execute();
          const res = await admin.get('/admin/audit');
          assert.equal(res.statusCode, 200);
          assert.doesNotMatch(res.body, /<x-evil|x-evil a='/);
          const csv = await admin.get('/admin/audit?format=csv');
          assert.equal(csv.statusCode, 200);
        },
      ),
      { numRuns: 60 },
    );
  });
});
