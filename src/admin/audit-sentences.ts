import { html, type SafeHtml } from '../views/html.ts';
import { type AuditAction, type AuditRow, isCommandLineName } from './audit-queries.ts';

/**
 * Each audit row as a sentence a person reads ("Ann Admin changed the role of Bob Builder from User to Admin."): one
 * function per action, written once as parts, rendered as HTML (names link to the accounts) or as plain text (the
 * CSV's summary). Details are whatever JSON the row holds (older versions and adopted databases wrote other shapes),
 * so every value is read through a type check and a missing one leaves its clause out instead of breaking the page.
 */

/** An account named by a row: its id (null once the account is gone), the name then, and its name now. */
export interface PersonRef {
  id: number | null;
  was: string | null;
  now: string | null;
}

export type Part = string | { person: PersonRef };

/** Typed reads of a row's details; anything of another type reads as absent. */
export interface Details {
  text(key: string): string | undefined;
  count(key: string): number | undefined;
  flag(key: string): boolean | undefined;
}

/** Long values (a pasted URL, an adopted row's blob) are cut: the sentence stays a sentence. */
const VALUE_MAX_CHARS = 200;

const cut = (s: string): string => {
  const chars = [...s];
  return chars.length > VALUE_MAX_CHARS ? `${chars.slice(0, VALUE_MAX_CHARS).join('')}…` : s;
};

export function readDetails(raw: unknown): Details {
  const obj = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const own = (key: string): unknown => (Object.hasOwn(obj, key) ? obj[key] : undefined);
  return {
    text: (key) => {
      const v = own(key);
      return typeof v === 'string' && v.trim() !== '' ? cut(v) : undefined;
    },
    count: (key) => {
      const v = own(key);
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
    },
    flag: (key) => {
      const v = own(key);
      return typeof v === 'boolean' ? v : undefined;
    },
  };
}

type Sentence = (actor: Part, target: Part, d: Details) => Part[];

const modelName = (d: Details): string => (d.text('name') ? `the model “${d.text('name')}”` : 'a model');
const enabledWord = (d: Details): string | undefined => (d.flag('enabled') === undefined ? undefined : d.flag('enabled') ? 'enabled' : 'disabled');

/** "llama3 at http://…, enabled, API key set": the clauses present, joined. */
/** Migration 026's system prompt, in a model's audit rows: only a change is worth a clause. */
const SYSTEM_PROMPT_CHANGES: Record<string, string> = { set: 'with a system prompt', changed: 'system prompt changed', removed: 'system prompt removed' };

function modelSettings(d: Details, key: Record<string, string>): string {
  const where = [d.text('model'), d.text('baseUrl') && `at ${d.text('baseUrl')}`].filter(Boolean).join(' ');
  const apiKey = d.text('apiKey');
  const prompt = SYSTEM_PROMPT_CHANGES[d.text('systemPrompt') ?? ''];
  const clauses = [where, enabledWord(d), apiKey && (key[apiKey] ?? `API key ${apiKey}`), prompt].filter((c): c is string => Boolean(c));
  return clauses.length === 0 ? '' : ` (${clauses.join(', ')})`;
}

const groupName = (d: Details): string => (d.text('group') ? `the group “${d.text('group')}”` : 'a group');
const apiKeyName = (d: Details): string =>
  d.text('name') ? `the API key “${d.text('name')}”${d.text('prefix') ? ` (${d.text('prefix')}…)` : ''}` : 'an API key';

const ROLE_NAMES: Record<string, string> = { admin: 'Admin', user: 'User' };
const SIGN_IN: Record<string, string> = { password: 'signing in with a password', google: 'signing in with Google only' };

/** Every action the code writes has its sentence here; the type makes a new action without one a compile error. */
export const SENTENCES: Record<AuditAction, Sentence> = {
  promote: (a, t) => [a, ' changed the role of ', t, ' from User to Admin.'],
  demote: (a, t) => [a, ' changed the role of ', t, ' from Admin to User.'],
  deactivate: (a, t) => [a, ' deactivated ', t, ': signed out everywhere, running answers stopped.'],
  reactivate: (a, t) => [a, ' reactivated ', t, '.'],
  'sign-out-everywhere': (a, t) => [a, ' signed ', t, ' out everywhere.'],
  'revoke-session': (a, t) => [a, ' ended one session of ', t, '.'],
  'reset-2fa': (a, t) => [a, ' reset two-factor authentication of ', t, ' (authenticator, recovery codes and passkeys) and signed them out.'],
  'remove-passkeys': (a, t, d) => [
    a,
    ' removed ',
    d.count('count') === undefined ? 'the passkeys' : d.count('count') === 1 ? 'the one passkey' : `all ${d.count('count')} passkeys`,
    ' of ',
    t,
    ' and signed them out.',
  ],
  // Written by the sign-in itself (the account is actor and target): a valid signature whose counter did not go up.
  'passkey-counter-regressed': (_a, t, d) => [
    'A passkey sign-in of ',
    t,
    ` was refused${d.text('name') ? ` (passkey “${d.text('name')}”)` : ''}: its signature counter went backwards${
      d.count('counter') !== undefined && d.count('stored') !== undefined ? ` (${d.count('counter')} after ${d.count('stored')})` : ''
    }, which can mean the authenticator was cloned.`,
  ],
  'create-reset-link': (a, t, d) => [
    a,
    ' created a password reset link for ',
    t,
    d.count('validMinutes') === undefined ? '.' : ` (valid ${d.count('validMinutes')} minutes).`,
  ],
  'create-user': (a, t, d) => {
    const role = ROLE_NAMES[d.text('role') ?? ''];
    const signIn = SIGN_IN[d.text('signIn') ?? ''];
    const clauses = [role && ` as ${role}`, signIn && `, ${signIn}`].filter(Boolean).join('');
    return [a, ' created the account ', t, `${clauses}.`];
  },
  'create-model': (a, _t, d) => [a, ` added ${modelName(d)}${modelSettings(d, { set: 'with an API key', none: 'no API key' })}.`],
  'update-model': (a, _t, d) => [
    a,
    ` changed ${modelName(d)}${modelSettings(d, { kept: 'API key kept', removed: 'API key removed', replaced: 'API key replaced' })}.`,
  ],
  'enable-model': (a, _t, d) => [a, ` enabled ${modelName(d)}.`],
  'disable-model': (a, _t, d) =>
    d.text('outcome') === 'disabled'
      ? [a, ` asked to delete ${modelName(d)}; it has chats, so it was disabled instead and its history kept.`]
      : [a, ` disabled ${modelName(d)}.`],
  'delete-model': (a, _t, d) => [a, ` deleted ${modelName(d)}.`],
  'default-model': (a, _t, d) => [a, ` made ${modelName(d)} the default for new chats.`],
  'model-access': (a, _t, d) => [
    a,
    d.text('groups') === undefined ? ` made ${modelName(d)} available to everyone.` : ` made ${modelName(d)} available to the groups ${d.text('groups')} only.`,
  ],
  'create-group': (a, _t, d) => [a, ` created ${groupName(d)}${d.flag('managed') ? ', managed by sign-in' : ''}.`],
  'update-group': (a, _t, d) => [
    a,
    ` changed ${d.text('was') ? `the group “${d.text('was')}”` : 'a group'}${d.text('name') ? ` to “${d.text('name')}”` : ''}${
      d.flag('managed') === undefined ? '' : d.flag('managed') ? ', managed by sign-in' : ', managed here'
    }.`,
  ],
  'delete-group': (a, _t, d) => [a, ` deleted ${groupName(d)}${d.count('members') === undefined ? '' : ` (${d.count('members')} members)`}.`],
  'add-to-group': (a, t, d) => [a, ' added ', t, ` to ${groupName(d)}.`],
  'remove-from-group': (a, t, d) => [a, ' removed ', t, ` from ${groupName(d)}.`],
  'group-limits': (a, _t, d) => [a, ` set the limits of ${groupName(d)}: ${d.text('limits') ?? 'changed'}.`],
  'user-limits': (a, t, d) => [a, ' set the limits of ', t, `: ${d.text('limits') ?? 'changed'}.`],
  'create-api-key': (a, t, d) => [
    a,
    ` created ${apiKeyName(d)} for `,
    t,
    d.count('expiresInDays') === undefined ? ' (no expiry).' : ` (expires in ${d.count('expiresInDays')} days).`,
  ],
  'revoke-api-key': (a, t, d) => [a, ` revoked ${apiKeyName(d)} of `, t, '.'],
};

const isKnown = (action: string): action is AuditAction => Object.hasOwn(SENTENCES, action);

/** A row whose action this version does not know (an older or newer version wrote it): said plainly, with its details. */
function fallback(action: string, a: Part, t: Part | null, raw: unknown): Part[] {
  let shown = '';
  try {
    shown = raw === null || raw === undefined || (typeof raw === 'object' && Object.keys(raw).length === 0) ? '' : cut(JSON.stringify(raw) ?? '');
  } catch {
    shown = '';
  }
  return [a, ` did “${cut(action)}”`, ...(t === null ? [] : [' to ', t]), shown === '' ? '.' : ` (details: ${shown}).`];
}

/** The parts of one row's sentence. */
export function auditSentence(row: AuditRow): Part[] {
  const actor: Part = { person: { id: row.actorId, was: row.actor, now: row.actorNow } };
  const hasTarget = row.targetId !== null || (row.target !== null && row.target !== '');
  const target: Part | null = hasTarget ? { person: { id: row.targetId, was: row.target, now: row.targetNow } } : null;
  const d = readDetails(row.details);
  const parts = isKnown(row.action) ? SENTENCES[row.action](actor, target ?? 'an account', d) : fallback(row.action, actor, target, row.details);
  const bulk = d.count('bulk');
  if (bulk !== undefined && bulk > 1) {
    const last = parts.pop();
    const end = typeof last === 'string' && last.endsWith('.') ? last.slice(0, -1) : last;
    parts.push(...(end === undefined ? [] : [end]), ` (one of ${bulk} accounts in one bulk action).`);
  }
  return parts;
}

/** The name a person is shown under: today's name; the old one beside it after a rename; "removed" once gone. */
function personText(p: PersonRef): { name: string; note: string } {
  const name = p.now ?? (p.was !== null && p.was.trim() !== '' ? p.was : 'an unknown account');
  if (p.id === null && isCommandLineName(p.was)) return { name, note: '' };
  if (p.now === null) return { name, note: p.was !== null && p.was.trim() !== '' ? ' (account removed)' : '' };
  return { name, note: p.was !== null && p.was !== p.now ? ` (then “${p.was}”)` : '' };
}

export function sentenceHtml(parts: Part[]): SafeHtml {
  return html`${parts.map((part) => {
    if (typeof part === 'string') return part;
    const { name, note } = personText(part.person);
    return part.person.id !== null && part.person.now !== null
      ? html`<a href="/admin/users/${part.person.id}">${name}</a>${note}`
      : html`${name}<span class="text-body-secondary">${note}</span>`;
  })}`;
}

export function sentenceText(parts: Part[]): string {
  return parts
    .map((part) => {
      if (typeof part === 'string') return part;
      const { name, note } = personText(part.person);
      return name + note;
    })
    .join('');
}
