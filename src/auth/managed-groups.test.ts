import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { TestProvider } from '../../test/google-provider.ts';
import { addMembers, createGroup, listUserGroups } from '../groups/group-queries.ts';
import { findUserByEmail } from '../users/user-queries.ts';
import { groupsFromClaim } from './google-client.ts';

// Groups "managed by sign-in" follow the ID token's OIDC_GROUPS_CLAIM at every OpenID sign-in, against a real
// provider on loopback: in the managed groups it names, out of the managed groups it does not; other groups untouched.

const provider = new TestProvider();
let t: TestApp;
before(async () => {
  await provider.start();
  t = await startTestApp(provider.env({ OIDC_GROUPS_CLAIM: 'groups' }));
});
after(async () => {
  await t.close();
  await provider.stop();
});

async function signIn(claims: Record<string, unknown>): Promise<LightMyRequestResponse> {
  provider.claims = { email: 'gina@example.com', email_verified: true, name: 'Gina', ...claims };
  const c = new TestClient(t.app);
  const start = await c.get('/login/google');
  const back = new URL(await provider.authorize(String(start.headers.location)));
  return c.get(back.pathname + back.search);
}

const groupsOf = async () => {
  const user = await findUserByEmail(t.database.db, 'gina@example.com');
  return (await listUserGroups(t.database.db, user?.id ?? 0)).map((g) => g.name).sort();
};

test('membership of managed groups follows the claim at each sign-in; groups managed here are left alone', async () => {
  const db = t.database.db;
  await createGroup(db, 'Staff', true);
  await createGroup(db, 'Pilots', true);
  const manual = (await createGroup(db, 'Book club', false)) ?? 0;
  await createGroup(db, 'Listed but manual', false);

  const first = await signIn({ groups: ['staff', '/Pilots', 'Listed but manual', 'unknown'] });
  assert.equal(first.statusCode, 303);
  assert.equal(first.headers.location, '/chat');
  assert.deepEqual(await groupsOf(), ['Pilots', 'Staff'], 'case-insensitive names, Keycloak’s /path form; a manual group is not joined by the claim');

  const user = await findUserByEmail(db, 'gina@example.com');
  await addMembers(db, manual, [user?.id ?? 0]);
  await signIn({ groups: ['Pilots'] });
  assert.deepEqual(await groupsOf(), ['Book club', 'Pilots'], 'left Staff; the group managed here is kept');

  await signIn({ groups: undefined });
  assert.deepEqual(await groupsOf(), ['Book club'], 'a token without the claim: in no managed group');
  await signIn({ groups: 'Staff' });
  assert.deepEqual(await groupsOf(), ['Book club', 'Staff'], 'a single string counts as one value');
});

test('groupsFromClaim keeps strings only, and reads /path as the group too', () => {
  assert.deepEqual(groupsFromClaim(['a', 3, { b: 1 }, '/c', '', 'd\u0000']), ['a', '/c', 'c']);
  assert.deepEqual(groupsFromClaim(undefined), []);
  assert.deepEqual(groupsFromClaim(42), []);
});
