import { setTimeout as sleep } from 'node:timers/promises';
import { fakeAnswerChunks } from '../src/llm/fake-llm-server.ts';
import type { Tally, Visitor } from './soak-visitor.ts';

/**
 * What the soak's virtual users do, over and over until the time is up: sign in with their password, take a
 * session's worth of weighted random actions with a short pause between them, sign out, and start again.
 * A user reads the chat list, their chats and Settings, and streams answers from the fake model (new chats up to
 * MAX_CHATS each, then more turns in old ones). An admin also reads the user list (plain, searched, one user's
 * page), the audit log and the statistics. An answer under way when the time is up is read to its end, so every
 * answer started can be checked in the database afterwards.
 */
export interface Account {
  email: string;
  password: string;
  /** Unique per account: in its chats' prompts, so a chat page can be recognised as this one's. */
  tag: string;
}

export interface StartedAnswer {
  responseId: number;
  expected: string;
}

export interface TrafficContext {
  tally: Tally;
  /** performance.now() after which no new action starts (moved once the warm-up is over). */
  untilMs: number;
  thinkMs: number;
  modelId: number;
  answers: StartedAnswer[];
  /** Ids of the accounts, for the admins' user pages. */
  userIds: number[];
  random: () => number;
}

const ACTIONS_PER_SESSION = 15;
const MAX_CHATS = 6;

type Action = [weight: number, run: () => Promise<unknown>];

function pick(actions: Action[], random: () => number): Action[1] {
  let r = random() * actions.reduce((a, [w]) => a + w, 0);
  for (const [w, run] of actions) {
    r -= w;
    if (r < 0) return run;
  }
  return (actions.at(-1) as Action)[1];
}

const timeLeft = (ctx: TrafficContext) => performance.now() < ctx.untilMs;

/** Half the prompts get a long lorem-ipsum answer (20–80 chunks), half the fixed paragraph and code; 5–20 ms a chunk. */
function promptFor(account: Account, n: number, random: () => number): { prompt: string; expected: string } {
  const slow = `[[slow:${5 + Math.floor(random() * 16)}]]`;
  const body = random() < 0.5 ? `[[long:${20 + Math.floor(random() * 61)}]]` : 'tell me something';
  const prompt = `${account.tag}-${n} ${body} ${slow}`;
  return { prompt, expected: fakeAnswerChunks([{ role: 'user', content: prompt }]).join('') };
}

async function session(visitor: Visitor, account: Account, ctx: TrafficContext, actions: Action[]): Promise<void> {
  if (!(await visitor.signIn(account.email, account.password))) {
    await sleep(500); // the error is counted; do not spin on a failing sign-in
    return;
  }
  for (let i = 0; i < ACTIONS_PER_SESSION && timeLeft(ctx); i++) {
    await pick(actions, ctx.random)();
    await sleep(ctx.thinkMs * (0.5 + ctx.random()));
  }
  await visitor.signOut();
}

export async function runUser(visitor: Visitor, account: Account, ctx: TrafficContext): Promise<void> {
  const chats: number[] = [];
  let prompts = 0;
  const ask = async () => {
    let chatId = chats[Math.floor(ctx.random() * chats.length)];
    if (chats.length < MAX_CHATS) {
      const created = await visitor.send('POST /api/chats', '/api/chats', 201, { method: 'POST', json: { llm: ctx.modelId } });
      if (!created) return;
      chatId = (JSON.parse(created.text) as { id: number }).id;
      chats.push(chatId);
    }
    const { prompt, expected } = promptFor(account, prompts++, ctx.random);
    const streamed = await visitor.ask(chatId as number, prompt, expected);
    if (streamed) ctx.answers.push({ responseId: streamed.responseId, expected });
  };
  const ownChat = async () => {
    if (chats.length === 0) return ask();
    return visitor.page('GET /chat/:id', `/chat/${chats[Math.floor(ctx.random() * chats.length)]}`, account.tag);
  };
  const actions: Action[] = [
    [3, () => visitor.page('GET /chat', '/chat', '<title>Chat · ')],
    [3, ownChat],
    [1, () => visitor.page('GET /settings', '/settings', '<title>Settings · ')],
    [3, ask],
  ];
  while (timeLeft(ctx)) await session(visitor, account, ctx, actions);
}

const SEARCHES = ['soak', 'user1', 'example.com', 'nobody-by-this-name'];
const RANGES = ['24h', '7d', '30d', 'all'];

export async function runAdmin(visitor: Visitor, account: Account, ctx: TrafficContext): Promise<void> {
  const any = <T>(list: T[]) => list[Math.floor(ctx.random() * list.length)] as T;
  const actions: Action[] = [
    [2, () => visitor.page('GET /admin/users', '/admin/users', '<title>Users · ')],
    [1, () => visitor.page('GET /admin/users?q=', `/admin/users?q=${any(SEARCHES)}`, '<title>Users · ')],
    [1, () => visitor.page('GET /admin/users/:id', `/admin/users/${any(ctx.userIds)}`, 'Sessions')],
    [2, () => visitor.page('GET /admin/audit', '/admin/audit', '<title>Audit log · ')],
    [2, () => visitor.page('GET /admin/stats', `/admin/stats?range=${any(RANGES)}`, '<title>Statistics · ')],
    [1, () => visitor.page('GET /chat', '/chat', '<title>Chat · ')],
  ];
  while (timeLeft(ctx)) await session(visitor, account, ctx, actions);
}
