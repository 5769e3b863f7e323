import { type Place, placeForServer } from '../test/server-process.ts';
import { type DbKind, registerViaForm } from './lib.ts';
import type { Account } from './soak-traffic.ts';
import { Tally, Visitor } from './soak-visitor.ts';

/** The soak's world before the traffic: where the server keeps its data, its accounts, and a seeded random mix. */
const PASSWORD = 'a soak test passphrase for 2026';

/** Where the soak's server keeps its data: test/server-process.ts's place, on the kind the soak was asked for. */
export async function placeFor(kind: DbKind): Promise<Place> {
  if (kind === 'postgres' && !process.env.TEST_DATABASE_URL) throw new Error('the soak on PostgreSQL needs TEST_DATABASE_URL');
  return placeForServer({ kind, prefix: 'parley_soak' });
}

/** A small seeded generator (mulberry32): the same seed gives the same mix of actions and prompts. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The accounts, made the way an operator would: the first registration (which makes an Admin), then the rest
 * through /admin/users/new by that admin (registration from one address is throttled after 20 accounts).
 */
export async function createAccounts(
  baseUrl: string,
  counts: { users: number; admins: number },
): Promise<{ users: Account[]; admins: Account[]; userIds: number[]; modelId: number }> {
  const first: Account = { email: 'admin0@soak.example', password: PASSWORD, tag: 'soak-a0' };
  await registerViaForm(baseUrl, { username: 'Soak admin 0', email: first.email, password: PASSWORD });
  const setup = new Tally();
  const admin = new Visitor(baseUrl, setup);
  if (!(await admin.signIn(first.email, PASSWORD))) throw new Error(`the first admin cannot sign in: ${setup.problems.join('; ')}`);
  const chatPage = await admin.page('setup', '/chat', '<option value=');
  const modelId = Number(/<option value="(\d+)"/.exec(chatPage?.text ?? '')?.[1]);
  const make = async (name: string, tag: string, role: 'user' | 'admin') => {
    const email = `${tag}@soak.example`;
    await admin.page('setup', '/admin/users/new', 'name="email"');
    const sent = await admin.send('setup', '/admin/users/new', 303, {
      method: 'POST',
      form: { username: name, email, role, signIn: 'password', password: PASSWORD },
    });
    const id = Number(/^\/admin\/users\/(\d+)$/.exec(sent?.location ?? '')?.[1]);
    if (!id) throw new Error(`could not create ${email}: ${setup.problems.join('; ')}`);
    return { account: { email, password: PASSWORD, tag }, id };
  };
  const admins = [first];
  for (let i = 1; i < counts.admins; i++) admins.push((await make(`Soak admin ${i}`, `soak-a${i}`, 'admin')).account);
  const users: Account[] = [];
  const userIds: number[] = [];
  for (let i = 0; i < counts.users; i++) {
    const made = await make(`Soak user ${i}`, `soak-u${i}`, 'user');
    users.push(made.account);
    userIds.push(made.id);
  }
  if (!modelId || setup.errorCount > 0) throw new Error(`setup failed: ${setup.problems.join('; ') || 'no model on /chat'}`);
  return { users, admins, userIds, modelId };
}
