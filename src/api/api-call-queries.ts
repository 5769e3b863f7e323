import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ApiCallStatus } from '../db/schema.ts';
import { type LimitName, type LimitRefusal, refusalFrom } from '../groups/usage-limits.ts';
import type { ModelConnectionRow } from '../llm/llm-queries.ts';

/**
 * The API's admission: one statement, one database round trip before the upstream is called (the time-to-first-token
 * path, docs/decisions/015). It authenticates the key (by its SHA-256: not revoked, not expired, its user active),
 * finds the model by its Parley name, and — when both are there and the call is allowed — records the call's start
 * (the api_call row, whose trigger counts the prompt in the rollups in the same transaction).
 *
 * Its commit is asynchronous (`synchronous_commit = off` for this transaction only): waiting for the WAL flush was
 * most of the time it added to the first token on PostgreSQL (measured on the shared machine: a one-row insert
 * 11.7 ms median with the flush, 0.36 ms without). The trade: if the database server itself crashes, the starts of
 * the calls of its last fraction of a second may be lost — never a half-written row or a wrong sum; such a call's
 * end then updates nothing. PGlite ignores the setting.
 *
 * Groups and limits (issue 19, docs/decisions/016) are decided inside the same statement, so the decision and the
 * record cannot race: `allowed` includes may_use_model (a restricted model is 403, as a disabled one), and `adm`
 * reserves one prompt and the estimated tokens with admit_prompt (increment-and-return under the lock of the user's
 * counter rows, shared with chat's begin_answer), which `started` requires. A refused call leaves no api_call row
 * and no counter change; its refusal (which limit, when it resets) comes back as columns. The reservation is kept
 * on the row and settled with the real tokens when the call ends (migration 024's trigger).
 */
export type Admission =
  | { kind: 'locked' }
  | { kind: 'unauthenticated' }
  | { kind: 'unknown-model'; userId: number }
  | { kind: 'forbidden-model'; userId: number }
  | { kind: 'over-limit'; userId: number; refusal: LimitRefusal }
  | { kind: 'admitted'; userId: number; keyId: number; callId: string; connection: ModelConnectionRow; reserved: boolean };

interface AdmissionRow {
  locked: boolean;
  idappuser: number | null;
  idapikey: number | null;
  idllm: number | null;
  txshortname: string | null;
  txbase_url: string | null;
  txapi_key_enc: string | null;
  txmodel: string | null;
  allowed: boolean | null;
  idapicall: string | null;
  outcome: string | null;
  limit_name: LimitName | null;
  limit_value: number | null;
  resets_at: Date | null;
  usage_day: string | null;
}

/** Who is calling: the key's SHA-256, and the throttle key of the caller's address (apiKeyThrottleKey). */
export interface Caller {
  keyHash: string;
  throttleKey: string;
}

/** Whether the caller's address is locked for too many wrong keys (login_throttle, as for passwords). */
const addressLocked = (c: Caller) =>
  sql<boolean>`EXISTS (SELECT 1 FROM chatbot_schema.login_throttle t WHERE t.txkey = ${c.throttleKey} AND t.dtlocked_until > now())`;

/**
 * The key's row when it may be used now: not revoked, not expired, its owner active (deactivation bites at once), and
 * the address not locked (a locked address has no key looked up at all, as a locked account has no password checked).
 */
const validKey = (c: Caller) => sql`
  SELECT k.idapikey, k.idappuser FROM chatbot_schema.api_key k JOIN chatbot_schema.app_user u ON u.idappuser = k.idappuser
  WHERE k.txhash = ${c.keyHash} AND k.dtrevoked IS NULL AND (k.dtexpires IS NULL OR k.dtexpires > now()) AND u.is_active
    AND NOT ${addressLocked(c)}`;

/** `estimatedTokens`: the request's prompt tokens, reserved against the token limits until the call is settled. */
export async function admitCompletion(db: Db, caller: Caller, modelName: string, estimatedTokens: number): Promise<Admission> {
  const r = await sql<AdmissionRow>`
    WITH k AS (${validKey(caller)}),
    -- By its Parley name; a disabled model is known (403: the admin turned it off), a name nobody has is not (404).
    m AS (
      SELECT l.idllm, l.txshortname, l.txbase_url, l.txapi_key_enc, l.txmodel, l.is_enabled AND l.txbase_url IS NOT NULL AS usable
      FROM chatbot_schema.llm l WHERE l.txshortname = ${modelName}
      ORDER BY l.is_enabled DESC, l.idllm LIMIT 1
    ),
    decision AS (
      SELECT k.idapikey, k.idappuser, m.idllm, m.txshortname, m.txbase_url, m.txapi_key_enc, m.txmodel,
        m.usable AND chatbot_schema.may_use_model(k.idappuser, m.idllm) AS allowed
      FROM k LEFT JOIN m ON TRUE
    ),
    -- The limits, only for an allowed call: 'ok' has reserved one prompt and the estimate (web and API count together).
    adm AS (SELECT a.* FROM decision d, LATERAL chatbot_schema.admit_prompt(d.idappuser, d.idllm, ${estimatedTokens}::int) a WHERE d.allowed),
    started AS (
      INSERT INTO chatbot_schema.api_call (idappuser, idapikey, idllm, nreserved_tokens, dusage_day)
      SELECT d.idappuser, d.idapikey, d.idllm, ${estimatedTokens}::int, a.usage_day FROM decision d, adm a WHERE d.allowed AND a.outcome = 'ok'
      RETURNING idapicall
    )
    SELECT ${addressLocked(caller)} AS locked, d.*, (SELECT s.idapicall FROM started s) AS idapicall,
      a.outcome, a.limit_name, a.limit_value, a.resets_at, a.usage_day,
      -- This statement's commit does not wait for the WAL flush (see above): the one round trip stays short.
      set_config('synchronous_commit', 'off', true) AS async_commit
    FROM (SELECT 1) one LEFT JOIN decision d ON TRUE LEFT JOIN adm a ON TRUE`.execute(db);
  const row = r.rows[0];
  if (!row || row.locked) return { kind: 'locked' };
  if (row.idappuser === null || row.idapikey === null) return { kind: 'unauthenticated' };
  if (row.idllm === null || row.txshortname === null) return { kind: 'unknown-model', userId: row.idappuser };
  if (!row.allowed || row.txbase_url === null) return { kind: 'forbidden-model', userId: row.idappuser };
  if (row.outcome === 'over_limit') return { kind: 'over-limit', userId: row.idappuser, refusal: refusalFrom(row) };
  if (row.idapicall === null) throw new Error(`an allowed API call was neither admitted nor refused (${row.outcome})`);
  return {
    kind: 'admitted',
    userId: row.idappuser,
    keyId: row.idapikey,
    callId: String(row.idapicall),
    // A limit applies: admit_prompt reserved against it (usage_day set), and the call's end settles the reservation.
    reserved: row.usage_day !== null,
    connection: {
      idllm: row.idllm,
      txshortname: row.txshortname,
      txbase_url: row.txbase_url,
      txapi_key_enc: row.txapi_key_enc,
      txmodel: row.txmodel,
      is_enabled: true,
    },
  };
}

/** GET /v1/models: the key's user, if the key may be used now, and the models they may use (may_use_model, as chat's picker). */
export async function modelsForKey(db: Db, caller: Caller): Promise<{ kind: 'locked' | 'unauthenticated' } | { kind: 'ok'; userId: number; models: string[] }> {
  const r = await sql<{ locked: boolean; idappuser: number | null; name: string | null }>`
    WITH k AS (${validKey(caller)})
    SELECT ${addressLocked(caller)} AS locked, k.idappuser, l.txshortname AS name
    FROM (SELECT 1) one LEFT JOIN k ON TRUE LEFT JOIN chatbot_schema.llm l ON k.idappuser IS NOT NULL AND l.is_enabled AND l.txbase_url IS NOT NULL
      AND chatbot_schema.may_use_model(k.idappuser, l.idllm)
    ORDER BY lower(l.txshortname), l.idllm`.execute(db);
  const first = r.rows[0];
  if (!first || first.locked) return { kind: 'locked' };
  if (first.idappuser === null) return { kind: 'unauthenticated' };
  return { kind: 'ok', userId: first.idappuser, models: r.rows.flatMap((x) => (x.name === null ? [] : [x.name])) };
}

export interface ApiCallEnd {
  status: Exclude<ApiCallStatus, 'running'>;
  /** Milliseconds from the call's start to its end, and to its first token (null without one), measured in this process. */
  elapsedMs: number;
  firstTokenMs: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  estimated: boolean;
  error: string | null;
}

/**
 * The call's end, in one update (its trigger moves the call into the rollups). The times of the first token and of
 * the end are written here, from the process's own clock and counted from tinf_start, instead of by a write on the
 * first token's path (and whenever the write happens: src/api/call-ends.ts may write it a little later). Guarded on
 * 'running': a call a sweep already ended is not counted twice.
 */
export async function finishApiCall(db: Db, callId: string, end: ApiCallEnd): Promise<void> {
  await db
    .updateTable('chatbot_schema.api_call')
    .set({
      txstatus: end.status,
      tinf_end: sql<Date>`tinf_start + make_interval(secs => ${end.elapsedMs / 1000})`,
      tfirst_token: end.firstTokenMs === null ? null : sql<Date>`tinf_start + make_interval(secs => ${end.firstTokenMs / 1000})`,
      nprompt_tokens: end.promptTokens,
      ncompletion_tokens: end.completionTokens,
      is_estimated: end.estimated,
      txerror: end.error,
    })
    .where('idapicall', '=', callId)
    .where('txstatus', '=', 'running')
    // Committed without waiting for the WAL flush, as the start (admitCompletion): lost only if the database server
    // crashes within a fraction of a second, and then the sweep ends the call 'interrupted' (interruptAbandonedApiCalls).
    .returning(sql<string>`set_config('synchronous_commit', 'off', true)`.as('async_commit'))
    .execute();
}

/**
 * Calls still 'running' that began more than `olderThanS` ago: no live process relays a call that long (each is
 * ended at LLM_MAX_ANSWER_S), so their process died; they end 'interrupted' and their answer is counted as such. Run
 * at start and periodically by every process: calls carry no owner, so age is the proof, and it needs no lock.
 */
export async function interruptAbandonedApiCalls(db: Db, olderThanS: number): Promise<number> {
  const r = await db
    .updateTable('chatbot_schema.api_call')
    .set({ txstatus: 'interrupted', tinf_end: sql<Date>`now()`, txerror: 'The server stopped before this call was finished.' })
    .where('txstatus', '=', 'running')
    .where('tinf_start', '<', sql<Date>`now() - make_interval(secs => ${olderThanS})`)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}
