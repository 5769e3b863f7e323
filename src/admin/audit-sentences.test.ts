import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { AUDIT_ACTIONS, type AuditRow, commandLineAuthor } from './audit-queries.ts';
import { auditSentence, SENTENCES, sentenceHtml, sentenceText } from './audit-sentences.ts';

const root = path.resolve(import.meta.dirname, '../..');
const sources = globSync('src/**/*.ts', { cwd: root }).filter((f) => !f.endsWith('.test.ts'));

const row = (action: string, details: unknown, over: Partial<AuditRow> = {}): AuditRow => ({
  id: 1,
  at: new Date('2026-12-07T10:00:00Z'),
  actorId: 1,
  actor: 'Ann Admin',
  actorNow: 'Ann Admin',
  targetId: 2,
  target: 'Bob Builder',
  targetNow: 'Bob Builder',
  action,
  details,
  ip: null,
  ...over,
});
const say = (action: string, details: unknown = {}, over: Partial<AuditRow> = {}) => sentenceText(auditSentence(row(action, details, over)));

describe('audit sentences', () => {
  test('only writeAudit writes the log, so its typed action (and SENTENCES, keyed by that type) covers every row written', () => {
    const writers = sources.filter((f) => {
      const text = readFileSync(path.join(root, f), 'utf8');
      return /insertInto\(\s*'chatbot_schema\.admin_audit'|INSERT INTO\s+chatbot_schema\.admin_audit/i.test(text);
    });
    assert.deepEqual(writers, ['src/admin/audit-queries.ts']);
  });

  test('every action literal passed to writeAudit has a sentence of its own', () => {
    const written = new Set<string>();
    for (const f of sources) {
      const text = readFileSync(path.join(root, f), 'utf8');
      for (const call of text.matchAll(/writeAudit\(([^;]*?)\);/gs)) {
        for (const literal of (call[1] ?? '').matchAll(/'([a-z0-9-]+)'/g)) if (AUDIT_ACTIONS.some((a) => a === literal[1])) written.add(literal[1] ?? '');
        // Actions passed as a variable come from USER_ACTIONS (user-actions.ts), checked below through AUDIT_ACTIONS.
      }
    }
    assert.ok(written.size >= 8, `found ${[...written].join(', ')}`);
    for (const action of [...written, ...AUDIT_ACTIONS]) {
      assert.ok(Object.hasOwn(SENTENCES, action), `${action} has no sentence`);
      assert.doesNotMatch(say(action), /did “/, action);
    }
  });

  test('what the app writes reads as a sentence', () => {
    assert.equal(say('promote'), 'Ann Admin changed the role of Bob Builder from User to Admin.');
    assert.equal(say('demote'), 'Ann Admin changed the role of Bob Builder from Admin to User.');
    assert.equal(say('create-reset-link', { validMinutes: 60 }), 'Ann Admin created a password reset link for Bob Builder (valid 60 minutes).');
    assert.equal(
      say('reset-2fa'),
      'Ann Admin reset two-factor authentication of Bob Builder (authenticator, recovery codes and passkeys) and signed them out.',
    );
    assert.equal(say('create-user', { role: 'admin', signIn: 'google' }), 'Ann Admin created the account Bob Builder as Admin, signing in with Google only.');
    assert.equal(say('sign-out-everywhere', { bulk: 3 }), 'Ann Admin signed Bob Builder out everywhere (one of 3 accounts in one bulk action).');
    const noTarget = { targetId: null, target: null, targetNow: null };
    assert.equal(
      say('create-model', { id: 4, name: 'Llama', baseUrl: 'http://llm:8080/v1', model: 'llama3', enabled: true, apiKey: 'set' }, noTarget),
      'Ann Admin added the model “Llama” (llama3 at http://llm:8080/v1, enabled, with an API key).',
    );
    assert.equal(
      say('update-model', { id: 4, name: 'Llama', baseUrl: 'http://llm:8080/v1', model: 'llama3', enabled: false, apiKey: 'kept' }, noTarget),
      'Ann Admin changed the model “Llama” (llama3 at http://llm:8080/v1, disabled, API key kept).',
    );
    // Migration 026's system prompt: only a change is said.
    for (const [systemPrompt, clause] of [
      ['changed', ', system prompt changed'],
      ['removed', ', system prompt removed'],
      ['kept', ''],
    ] as const) {
      assert.equal(
        say('update-model', { id: 4, name: 'Llama', model: 'llama3', enabled: true, apiKey: 'kept', systemPrompt }, noTarget),
        `Ann Admin changed the model “Llama” (llama3, enabled, API key kept${clause}).`,
      );
    }
    assert.equal(
      say('create-model', { id: 4, name: 'Llama', model: 'llama3', enabled: true, apiKey: 'none', systemPrompt: 'set' }, noTarget),
      'Ann Admin added the model “Llama” (llama3, enabled, no API key, with a system prompt).',
    );
    assert.equal(
      say('disable-model', { id: 4, name: 'Llama', outcome: 'disabled' }, noTarget),
      'Ann Admin asked to delete the model “Llama”; it has chats, so it was disabled instead and its history kept.',
    );
    assert.equal(say('delete-model', { id: 4, name: 'Llama', outcome: 'deleted' }, noTarget), 'Ann Admin deleted the model “Llama”.');
    assert.equal(say('default-model', { id: 4, name: 'Llama' }, noTarget), 'Ann Admin made the model “Llama” the default for new chats.');
  });

  test('renamed, removed and unknown accounts; unknown actions; odd details', () => {
    assert.equal(say('reactivate', {}, { targetNow: 'Robert' }), 'Ann Admin reactivated Robert (then “Bob Builder”).');
    assert.equal(say('reactivate', {}, { targetId: null, targetNow: null }), 'Ann Admin reactivated Bob Builder (account removed).');
    assert.equal(say('reactivate', {}, { actorId: null, actor: '', actorNow: null }), 'an unknown account reactivated Bob Builder.');
    const cli = commandLineAuthor('user:reset-password').username;
    assert.equal(say('create-reset-link', {}, { actorId: null, actor: cli, actorNow: null }), `${cli} created a password reset link for Bob Builder.`);
    assert.equal(say('frobnicate', { a: 1 }), 'Ann Admin did “frobnicate” to Bob Builder (details: {"a":1}).');
    for (const odd of [null, 7, 'text', [1, 2], { name: 5, validMinutes: 'x', bulk: -1 }]) {
      assert.match(say('create-reset-link', odd), /^Ann Admin created a password reset link for Bob Builder\.$/);
    }
    const markup = sentenceHtml(auditSentence(row('frobnicate', { x: '<img src=x>' }, { actorNow: '<b>Ann</b>' }))).value;
    assert.doesNotMatch(markup, /<img|<b>/);
    assert.match(markup, /^<a href="\/admin\/users\/1">&lt;b&gt;Ann&lt;\/b&gt;<\/a>/);
  });
});
