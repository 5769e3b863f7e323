import { type RawBuilder, sql } from 'kysely';
import { type Db, queryRows, serverUrlOf } from '../db/database.ts';
import type { ApiCallStatus } from '../db/schema.ts';
import { type LimitName, type LimitRefusal, refusalFrom } from '../groups/usage-limits.ts';
import type { ModelConnectionRow } from '../llm/llm-queries.ts';

/**
 * The API's admission: one database round trip before the upstream is called, and a read (docs/decisions/015 and 026).
 * It authenticates the key (by its SHA-256: not revoked, not expired, its user active, the address not locked), finds
 * the model by its Parley name, decides access (`may_use_model`: a restricted model is 403, as a disabled one), and
 * reads whether any usage limit applies to the caller. With none — the common case — the call is admitted: it gets
 * its id (`nextval`) and its start time from the same statement, and its api_call row is written a moment later by
 * ApiCallJournal (src/api/call-journal.ts), many calls in one statement, off the way to the first token. The write
 * was most of the admission: 1.17 ms against 0.75 for the read, sequential calls 4 ms apart on the 2-core machine.
 *
 * Under a limit it is the statement before (admitUnderLimits), a second round trip: admit_prompt reserves one prompt
 * and the estimated tokens (increment-and-return under the lock of the user's counter rows, shared with chat's
 * begin_answer) and the api_call row is written in the same statement, holding the reservation that its end settles
 * (migration 024's trigger). A refused call leaves no api_call row and no counter change; its refusal (which limit,
 * when it resets) comes back as columns. A limit set between the two reads lets a call through unreserved, as a call
 * already running when a limit first applies is (migration 031).
 *
 * Writes commit asynchronously (`synchronous_commit = off` for their transaction only): waiting for the WAL flush was
 * most of the time the first version added to the first token (a one-row insert 11.7 ms median with the flush, 0.36
 * ms without). The trade: if the database server itself crashes, the records of the calls of its last fraction of a
 * second may be lost — never a half-written row or a wrong sum. Not on PGlite: see commitMode.
 */
export type Admission =
  | { kind: 'locked' }
  | { kind: 'unauthenticated' }
  | { kind: 'unknown-model'; userId: number }
  | { kind: 'forbidden-model'; userId: number }
  | { kind: 'over-limit'; userId: number; refusal: LimitRefusal }
  | AdmittedCall;

export interface AdmittedCall {
  kind: 'admitted';
  userId: number;
  keyId: number;
  callId: string;
  connection: ModelConnectionRow;
  /** The call holds a reservation against a limit (its end settles it); its row was written by the admission. */
  reserved: boolean;
  /** The start as the database's clock gave it (text, to keep its microseconds); null when the row is written already. */
  unrecordedStart: string | null;
}

interface DecisionRow {
  locked: boolean;
  idappuser: number | null;
  idapikey: number | null;
  idllm: number | null;
  txshortname: string | null;
  txbase_url: string | null;
  txapi_key_enc: string | null;
  txmodel: string | null;
  allowed: boolean | null;
}

interface ReadAdmissionRow extends DecisionRow {
  limited: boolean | null;
  idapicall: string | null;
  tstart: string | null;
}

interface ReservingAdmissionRow extends DecisionRow {
  idapicall: string | null;
  outcome: string | null;
  limit_name: LimitName | null;
  limit_value: number | null;
  resets_at: Date | null;
  usage_day: string | null;
}

/**
 * `synchronous_commit` for the API's writes: off on a PostgreSQL server, whose WAL writer flushes within a fraction of
 * a second; on for PGlite, which runs no WAL writer: an asynchronous commit there stays in memory until some later
 * synchronous one, so a process killed after an hour of API-only traffic lost that hour's calls
 * (test/api-shutdown.test.ts's kill -9 found it).
 */
export const commitMode = (db: Db): string => (serverUrlOf(db) === undefined ? 'on' : 'off');

/** Who is calling: the key's SHA-256, and the throttle key of the caller's address (apiKeyThrottleKey). */
export interface Caller {
  keyHash: string;
  throttleKey: string;
}

type Param = RawBuilder<unknown>;
const param = (value: string): Param => sql`${value}`;

/**
 * The caller's key, as joins one statement reads in a row (laterals, not CTEs: in a CTE read twice PostgreSQL keeps
 * the rows aside, which made the admission's read 0.1–0.2 ms slower with calls 4 ms apart). `lk.locked`: the caller's
 * address is locked for too many wrong keys (login_throttle, as for passwords); `k`: the key's row when it may be used
 * now — not revoked, not expired, its owner active (deactivation bites at once), and the address not locked (a locked
 * address has no key looked up at all, as a locked account has no password checked).
 */
const keyJoins = (keyHash: Param, throttleKey: Param) => sql`
  (SELECT EXISTS (SELECT 1 FROM chatbot_schema.login_throttle t WHERE t.txkey = ${throttleKey} AND t.dtlocked_until > now()) AS locked) lk
  LEFT JOIN LATERAL (
    SELECT k.idapikey, k.idappuser FROM chatbot_schema.api_key k JOIN chatbot_schema.app_user u ON u.idappuser = k.idappuser
    WHERE k.txhash = ${keyHash} AND k.dtrevoked IS NULL AND (k.dtexpires IS NULL OR k.dtexpires > now()) AND u.is_active AND NOT lk.locked
  ) k ON TRUE`;

/**
 * The key; the model by its Parley name, for a known key (a disabled one is known: 403; a name nobody has is not:
 * 404); and `a.allowed`, the access. may_use_model is the rule; a model open to all needs no call (it would say yes).
 */
const decisionJoins = (keyHash: Param, throttleKey: Param, modelName: Param) => sql`
  ${keyJoins(keyHash, throttleKey)}
  LEFT JOIN LATERAL (
    SELECT l.idllm, l.txshortname, l.txbase_url, l.txapi_key_enc, l.txmodel, l.is_enabled AND l.txbase_url IS NOT NULL AS usable, l.is_restricted
    FROM chatbot_schema.llm l WHERE l.txshortname = ${modelName}
    ORDER BY l.is_enabled DESC, l.idllm LIMIT 1
  ) m ON k.idappuser IS NOT NULL
  LEFT JOIN LATERAL (SELECT m.usable AND (NOT m.is_restricted OR chatbot_schema.may_use_model(k.idappuser, m.idllm)) AS allowed) a ON TRUE`;

/** The columns of DecisionRow from decisionJoins. */
const decisionColumns = sql`lk.locked, k.idapikey, k.idappuser, m.idllm, m.txshortname, m.txbase_url, m.txapi_key_enc, m.txmodel, a.allowed`;

/**
 * The read, its SQL text built once ($1 key hash, $2 throttle key, $3 model name): the hot path neither compiles it
 * nor goes through Kysely's executor (queryRows, src/db/database.ts).
 */
const readAdmissionSql = sql<ReadAdmissionRow>`
  SELECT ${decisionColumns}, li.limited,
    CASE WHEN a.allowed AND NOT li.limited THEN nextval('chatbot_schema.api_call_idapicall_seq') END AS idapicall,
    now()::text AS tstart
  FROM ${decisionJoins(sql.raw('$1'), sql.raw('$2'), sql.raw('$3'))}
  LEFT JOIN LATERAL (
    SELECT lim.prompts_per_day IS NOT NULL OR lim.tokens_per_day IS NOT NULL OR lim.tokens_per_month IS NOT NULL AS limited
    FROM chatbot_schema.effective_limits(k.idappuser) lim
  ) li ON a.allowed`;
let readAdmissionText: string | undefined;

/** `estimatedTokens`: the request's prompt tokens, reserved against the token limits until the call is settled. */
export async function admitCompletion(db: Db, caller: Caller, modelName: string, estimatedTokens: number): Promise<Admission> {
  const first = await readAdmission(db, caller, modelName);
  return first.kind === 'limited' ? admitUnderLimits(db, caller, modelName, estimatedTokens) : first;
}

/**
 * The read alone: a refusal, the call admitted (no limit applies), or 'limited' (admitUnderLimits decides). It needs
 * only the key and the model's name, so the route sends it before it checks the rest of the request.
 */
export async function readAdmission(db: Db, caller: Caller, modelName: string): Promise<Admission | { kind: 'limited' }> {
  readAdmissionText ??= readAdmissionSql.compile(db).sql;
  const [row] = await queryRows<ReadAdmissionRow>(db, readAdmissionText, [caller.keyHash, caller.throttleKey, modelName]);
  const refused = refusal(row);
  if (refused) return refused;
  if (row?.limited) return { kind: 'limited' };
  if (!row?.idapicall || !row.tstart) throw new Error('an allowed API call got no id');
  return admitted(row, row.idapicall, false, row.tstart);
}

/** The refusals both statements share, in the order a caller should hear them; undefined for an allowed call. */
function refusal(row: DecisionRow | undefined): Admission | undefined {
  if (!row || row.locked) return { kind: 'locked' };
  if (row.idappuser === null || row.idapikey === null) return { kind: 'unauthenticated' };
  if (row.idllm === null || row.txshortname === null) return { kind: 'unknown-model', userId: row.idappuser };
  if (!row.allowed || row.txbase_url === null) return { kind: 'forbidden-model', userId: row.idappuser };
  return undefined;
}

function admitted(row: DecisionRow, callId: string, reserved: boolean, unrecordedStart: string | null): AdmittedCall {
  return {
    kind: 'admitted',
    userId: row.idappuser as number,
    keyId: row.idapikey as number,
    callId: String(callId),
    reserved,
    unrecordedStart,
    connection: {
      idllm: row.idllm as number,
      txshortname: row.txshortname as string,
      txbase_url: row.txbase_url,
      txapi_key_enc: row.txapi_key_enc,
      txmodel: row.txmodel,
      is_enabled: true,
    },
  };
}

/** A caller a limit applies to: decided, reserved and recorded in one statement (see Admission). */
export async function admitUnderLimits(db: Db, caller: Caller, modelName: string, estimatedTokens: number): Promise<Admission> {
  const r = await sql<ReservingAdmissionRow>`
    WITH d AS (SELECT ${decisionColumns} FROM ${decisionJoins(param(caller.keyHash), param(caller.throttleKey), param(modelName))}),
    -- 'ok' has reserved one prompt and the estimate (web and API count together).
    adm AS (SELECT a.* FROM d, LATERAL chatbot_schema.admit_prompt(d.idappuser, d.idllm, ${estimatedTokens}::int) a WHERE d.allowed),
    started AS (
      INSERT INTO chatbot_schema.api_call (idappuser, idapikey, idllm, nreserved_tokens, dusage_day)
      SELECT d.idappuser, d.idapikey, d.idllm, ${estimatedTokens}::int, a.usage_day FROM d, adm a WHERE d.allowed AND a.outcome = 'ok'
      RETURNING idapicall
    )
    SELECT d.*, (SELECT s.idapicall FROM started s) AS idapicall,
      a.outcome, a.limit_name, a.limit_value, a.resets_at, a.usage_day,
      set_config('synchronous_commit', ${commitMode(db)}, true) AS async_commit
    FROM d LEFT JOIN adm a ON TRUE`.execute(db);
  const row = r.rows[0];
  const refused = refusal(row);
  if (refused) return refused;
  if (row?.outcome === 'over_limit') return { kind: 'over-limit', userId: row.idappuser as number, refusal: refusalFrom(row) };
  if (!row?.idapicall) throw new Error(`an allowed API call was neither admitted nor refused (${row?.outcome})`);
  // A limit lifted in between: admitted with no reservation (usage_day NULL), its row written all the same.
  return admitted(row, row.idapicall, row.usage_day !== null, null);
}

/** GET /v1/models: the key's user, if the key may be used now, and the models they may use (may_use_model, as chat's picker). */
export async function modelsForKey(db: Db, caller: Caller): Promise<{ kind: 'locked' | 'unauthenticated' } | { kind: 'ok'; userId: number; models: string[] }> {
  const r = await sql<{ locked: boolean; idappuser: number | null; name: string | null }>`
    SELECT lk.locked, k.idappuser, l.txshortname AS name
    FROM ${keyJoins(param(caller.keyHash), param(caller.throttleKey))}
    LEFT JOIN chatbot_schema.llm l ON k.idappuser IS NOT NULL AND l.is_enabled AND l.txbase_url IS NOT NULL
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
