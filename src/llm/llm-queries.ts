import { type Expression, sql } from 'kysely';
import { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/database.ts';
import type { ModelConnection } from './model-client.ts';

/** The HKDF purpose of the key that seals model API keys at rest. */
export const API_KEY_PURPOSE = 'llm-api-key';

export function createApiKeyBox(appSecret: string): SecretBox {
  return new SecretBox(appSecret, API_KEY_PURPOSE);
}

/** What is known of a connection's health (migration 013): the last check and the last failure. */
export interface ModelHealth {
  /** The last check's result; null when the connection was never checked. */
  healthy: boolean | null;
  checkedAt: Date | null;
  /** 'test': an admin's Test connection; 'answer': a user's answer (see recordAnswerOutcome). */
  source: 'test' | 'answer' | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

export interface ModelSummary {
  id: number;
  name: string;
  model: string | null;
  baseUrl: string | null;
  enabled: boolean;
  /** Marked by an admin as taking images (migration 027): prompts with images may go to it. */
  vision: boolean;
  hasApiKey: boolean;
  chatCount: number;
  /** Marked by an admin as the model preselected for users with no usable last-used model. */
  isDefault: boolean;
  health: ModelHealth;
  /** The admin's instructions sent first in every chat with it (migration 026); null: none. */
  systemPrompt: string | null;
}

/** A connection plus whether users may chat with it: enabled by an admin and pointing somewhere. */
export type ModelConnectionRecord = ModelConnection & { enabled: boolean };

export interface ModelInput {
  name: string;
  baseUrl: string;
  model: string;
  enabled: boolean;
  /** Undefined keeps the stored one (callers that do not edit it); null removes it. */
  systemPrompt?: string | null;
  /** Takes images; undefined keeps what is stored (false for a new model). */
  vision?: boolean;
}

/** On update: a new key, `null` to remove the stored one, `undefined` to keep it. */
export type ApiKeyChange = string | null | undefined;

export class ApiKeyUnreadableError extends Error {
  constructor(name: string) {
    super(`The stored API key of "${name}" cannot be decrypted (was APP_SECRET changed?). Enter the key again.`);
  }
}

const table = 'chatbot_schema.llm';

function selectSummaries(db: Db) {
  return db.selectFrom(table).select((eb) => [
    'idllm as id',
    'txshortname as name',
    'txmodel as model',
    'txbase_url as baseUrl',
    'is_enabled as enabled',
    'vision',
    'is_default as isDefault',
    'system_prompt as systemPrompt',
    'is_healthy',
    'dthealth_checked',
    'txhealth_source',
    'txlast_error',
    'dtlast_error',
    eb('txapi_key_enc', 'is not', null).as('hasApiKey'),
    eb
      .selectFrom('chatbot_schema.chat')
      .select((c) => c.fn.countAll<number>().as('n'))
      .whereRef('chatbot_schema.chat.idllm', '=', 'chatbot_schema.llm.idllm')
      .as('chatCount'),
  ]);
}

type SummaryRow = Omit<ModelSummary, 'chatCount' | 'hasApiKey' | 'health'> & {
  chatCount: number | null;
  hasApiKey: unknown;
  is_healthy: boolean | null;
  dthealth_checked: Date | null;
  txhealth_source: 'test' | 'answer' | null;
  txlast_error: string | null;
  dtlast_error: Date | null;
};
const toSummary = ({ is_healthy, dthealth_checked, txhealth_source, txlast_error, dtlast_error, ...r }: SummaryRow): ModelSummary => ({
  ...r,
  hasApiKey: r.hasApiKey === true,
  chatCount: Number(r.chatCount ?? 0),
  health: { healthy: is_healthy, checkedAt: dthealth_checked, source: txhealth_source, lastError: txlast_error, lastErrorAt: dtlast_error },
});

export async function listModelSummaries(db: Db): Promise<ModelSummary[]> {
  const rows = await selectSummaries(db).orderBy(sql`lower(txshortname)`).orderBy('idllm').execute();
  return rows.map(toSummary);
}

export async function findModelSummary(db: Db, id: number): Promise<ModelSummary | undefined> {
  const row = await selectSummaries(db).where('idllm', '=', id).executeTakeFirst();
  return row && toSummary(row);
}

/**
 * Whether the user may use the model in column `idllm` (migration 020's may_use_model: the one rule of model access,
 * everyone's unless restricted to groups, admins included only through a group).
 */
export function userMayUse(userId: Expression<number> | number, idllm: string) {
  return sql<boolean>`chatbot_schema.may_use_model(${userId}, ${sql.ref(idllm)})`;
}

/** A model as one user may start a chat with it: usable (enabled, with a server) and allowed to them. */
export async function findModelForUser(db: Db, id: number, userId: number): Promise<{ usable: boolean; allowed: boolean } | undefined> {
  return db
    .selectFrom(table)
    .select([sql<boolean>`is_enabled AND txbase_url IS NOT NULL`.as('usable'), userMayUse(userId, 'idllm').as('allowed')])
    .where('idllm', '=', id)
    .executeTakeFirst();
}

/**
 * What the model picker offers this user: enabled models they may use. Rows adopted from the Flask prototype have
 * no base URL: they stay out of the picker (and their old chats stay readable) until an admin gives them one.
 */
export async function listEnabledModels(db: Db, userId: number): Promise<Array<{ id: number; name: string }>> {
  return selectEnabledModels(db, userId).execute();
}

/** The query of listEnabledModels, for a page that loads it together with its other data (chat: one round trip). */
export function selectEnabledModels(db: Db, userId: Expression<number> | number) {
  return db
    .selectFrom(table)
    .select(['idllm as id', 'txshortname as name'])
    .where('is_enabled', '=', true)
    .where('txbase_url', 'is not', null)
    .where(userMayUse(userId, 'idllm'))
    .orderBy(sql`lower(txshortname)`)
    .orderBy('idllm');
}

/**
 * The model a user's new chat starts with (docs/decisions/010): among the models the picker offers, a model whose
 * last check failed comes last; then the user's last-used model (that of their most recently active chat whose
 * model is still offered and not failing), then the admin's default, then the picker's order. Null when the picker
 * is empty. One scalar subquery, so the chat page still loads in one statement; the user's chats are read newest
 * first through chat_user_updated_idx and the first usable one ends the scan.
 */
export function selectPreferredModelId(db: Db, userId: Expression<number>) {
  const lastUsed = db
    .selectFrom('chatbot_schema.chat as pref_chat')
    .innerJoin(`${table} as pref_used`, 'pref_used.idllm', 'pref_chat.idllm')
    .select('pref_chat.idllm')
    .where('pref_chat.idappuser', '=', userId)
    .where('pref_used.is_enabled', '=', true)
    .where('pref_used.txbase_url', 'is not', null)
    .where(sql<boolean>`pref_used.is_healthy IS NOT FALSE`)
    .orderBy('pref_chat.dtupdated', 'desc')
    .orderBy('pref_chat.idchat', 'desc')
    .limit(1);
  return db
    .selectFrom(`${table} as pref`)
    .select('pref.idllm')
    .where('pref.is_enabled', '=', true)
    .where('pref.txbase_url', 'is not', null)
    .where(userMayUse(userId, 'pref.idllm'))
    .orderBy(sql`pref.is_healthy IS FALSE`)
    .orderBy(sql`pref.idllm IS NOT DISTINCT FROM (${lastUsed})`, 'desc')
    .orderBy('pref.is_default', 'desc')
    .orderBy(sql`lower(pref.txshortname)`)
    .orderBy('pref.idllm')
    .limit(1);
}

/**
 * The connection with its API key decrypted, disabled ones included (old chats still name their model).
 * `enabled` is false when the row has no base URL; `model` falls back to the name for prototype rows without one.
 */
export async function getModelConnection(db: Db, box: SecretBox, idllm: number): Promise<ModelConnectionRecord | undefined> {
  const row = await db
    .selectFrom(table)
    .select(['idllm', 'txshortname', 'txbase_url', 'txapi_key_enc', 'txmodel', 'is_enabled'])
    .where('idllm', '=', idllm)
    .executeTakeFirst();
  return row && toModelConnection(box, row);
}

/** The `llm` columns a connection is made of; other slices select them in their own queries (see chat). */
export interface ModelConnectionRow {
  idllm: number;
  txshortname: string;
  txbase_url: string | null;
  txapi_key_enc: string | null;
  txmodel: string | null;
  is_enabled: boolean;
}

export function toModelConnection(box: SecretBox, row: ModelConnectionRow): ModelConnectionRecord {
  let apiKey: string | null = null;
  if (row.txapi_key_enc !== null) {
    try {
      apiKey = box.decrypt(row.txapi_key_enc);
    } catch {
      throw new ApiKeyUnreadableError(row.txshortname);
    }
  }
  return {
    id: row.idllm,
    name: row.txshortname,
    baseUrl: row.txbase_url ?? '',
    apiKey,
    model: row.txmodel ?? row.txshortname,
    enabled: row.is_enabled && row.txbase_url !== null,
  };
}

/** Names are what users pick from, so two connections may not share one (case-insensitively). */
export async function isModelNameTaken(db: Db, name: string, exceptId?: number): Promise<boolean> {
  let q = db.selectFrom(table).select('idllm').where(sql<string>`lower(txshortname)`, '=', name.toLowerCase());
  if (exceptId !== undefined) q = q.where('idllm', '<>', exceptId);
  return (await q.executeTakeFirst()) !== undefined;
}

export async function createModel(db: Db, box: SecretBox, input: ModelInput & { apiKey: string | null }): Promise<number> {
  const { idllm } = await db
    .insertInto(table)
    .values({
      txshortname: input.name,
      txbase_url: input.baseUrl,
      txmodel: input.model,
      is_enabled: input.enabled,
      system_prompt: input.systemPrompt ?? null,
      vision: input.vision ?? false,
      txapi_key_enc: input.apiKey === null ? null : box.encrypt(input.apiKey),
    })
    .returning('idllm')
    .executeTakeFirstOrThrow();
  return idllm;
}

/**
 * Whether two base URLs name the same server: scheme, host and port, as the WHATWG URL parser normalises them
 * (so `HTTPS://Host:443/a` and `https://host/b` are one server). A missing or unparsable URL is nobody's origin.
 */
export function isSameOrigin(a: string | null, b: string | null): boolean {
  const origin = (value: string | null) => {
    if (value === null) return null;
    try {
      const { origin } = new URL(value);
      return origin === 'null' ? null : origin;
    } catch {
      return null;
    }
  };
  const left = origin(a);
  return left !== null && left === origin(b);
}

/**
 * Returns false when there is no such model. "Keep the key" (`apiKey: undefined`) only keeps it for the server it
 * was entered for: when the base URL moves to another origin, the stored key is dropped, so that editing a URL
 * (a typo, a hostile suggestion) can never send `Authorization: Bearer <key>` to a host the key was not meant for.
 * The row is locked while the old URL is compared, so a concurrent edit cannot slip a key past the check.
 */
export async function updateModel(db: Db, box: SecretBox, id: number, input: ModelInput & { apiKey: ApiKeyChange }): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const stored = await trx.selectFrom(table).select('txbase_url').where('idllm', '=', id).forUpdate().executeTakeFirst();
    if (!stored) return false;
    const keyChange = input.apiKey === undefined && !isSameOrigin(stored.txbase_url, input.baseUrl) ? null : input.apiKey;
    await trx
      .updateTable(table)
      .set({
        txshortname: input.name,
        txbase_url: input.baseUrl,
        txmodel: input.model,
        is_enabled: input.enabled,
        ...(input.systemPrompt === undefined ? {} : { system_prompt: input.systemPrompt }),
        ...(input.vision === undefined ? {} : { vision: input.vision }),
        ...(keyChange === undefined ? {} : { txapi_key_enc: keyChange === null ? null : box.encrypt(keyChange) }),
      })
      .where('idllm', '=', id)
      .execute();
    return true;
  });
}

export async function setModelEnabled(db: Db, id: number, enabled: boolean): Promise<boolean> {
  const result = await db.updateTable(table).set({ is_enabled: enabled }).where('idllm', '=', id).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Deletes a model nobody has chatted with. One that has chats (or answers) is disabled instead, so no history
 * is ever lost. The row lock makes the check exact: a chat being created for this model takes a KEY SHARE lock
 * on it (the foreign key), so it either committed before our check or waits until we are done.
 */
export async function deleteModel(db: Db, id: number): Promise<'deleted' | 'disabled' | 'missing'> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom(table).select('idllm').where('idllm', '=', id).forUpdate().executeTakeFirst();
    if (!row) return 'missing';
    const used = await sql<{ used: boolean }>`
      SELECT EXISTS (SELECT 1 FROM chatbot_schema.chat WHERE idllm = ${id})
          OR EXISTS (SELECT 1 FROM chatbot_schema.response WHERE idllm = ${id}) AS used`.execute(trx);
    if (used.rows[0]?.used) {
      await trx.updateTable(table).set({ is_enabled: false }).where('idllm', '=', id).execute();
      return 'disabled';
    }
    await trx.deleteFrom(table).where('idllm', '=', id).execute();
    return 'deleted';
  });
}

/** How long a stored error may be: a model server's failure is summarised by us (ModelError), so this is generous. */
const HEALTH_ERROR_MAX_CHARS = 500;

/** Records an admin's Test connection: its result and, when it failed, why. */
export async function recordTestResult(db: Db, id: number, error: string | null): Promise<void> {
  await db
    .updateTable(table)
    .set({
      is_healthy: error === null,
      dthealth_checked: sql<Date>`now()`,
      txhealth_source: 'test',
      ...(error === null ? {} : { txlast_error: error.slice(0, HEALTH_ERROR_MAX_CHARS), dtlast_error: sql<Date>`now()` }),
    })
    .where('idllm', '=', id)
    .execute();
}

/**
 * Records what a user's answer tells about its model: `error` when the answer could not even start (the server
 * unreachable, refusing the request or silent until the timeout), null when it completed. A completed answer only
 * writes when the model is not already known to be healthy, so the busy path (a healthy model answering) never
 * writes to this row; a failure always writes (its time and message are news to the admin).
 */
export async function recordAnswerOutcome(db: Db, id: number, error: string | null): Promise<void> {
  if (error === null) {
    await db
      .updateTable(table)
      .set({ is_healthy: true, dthealth_checked: sql<Date>`now()`, txhealth_source: 'answer' })
      .where('idllm', '=', id)
      .where(sql<boolean>`is_healthy IS NOT TRUE`)
      .execute();
    return;
  }
  const now = sql<Date>`now()`;
  await db
    .updateTable(table)
    .set({ is_healthy: false, dthealth_checked: now, txhealth_source: 'answer', txlast_error: error.slice(0, HEALTH_ERROR_MAX_CHARS), dtlast_error: now })
    .where('idllm', '=', id)
    .execute();
}

/**
 * Marks one model as the default and unmarks the one before, or returns false when there is no such model.
 * Runs in the caller's transaction (`trx`; LOCK TABLE needs one), so the audit row commits with it. The table lock
 * (self-conflicting; readers and chats' foreign-key checks are not blocked) makes two admins choosing different
 * defaults at once take turns, so the last one wins instead of one failing on the unique index.
 */
export async function setDefaultModel(trx: Db, id: number): Promise<boolean> {
  await sql`LOCK TABLE chatbot_schema.llm IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
  const target = await trx.selectFrom(table).select('idllm').where('idllm', '=', id).executeTakeFirst();
  if (!target) return false;
  await trx.updateTable(table).set({ is_default: false }).where('is_default', '=', true).where('idllm', '<>', id).execute();
  await trx.updateTable(table).set({ is_default: true }).where('idllm', '=', id).execute();
  return true;
}
