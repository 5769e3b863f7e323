import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { type AuditAuthor, writeAudit } from '../admin/audit-queries.ts';
import { sha256Hex } from '../crypto/tokens.ts';
import type { Db } from '../db/database.ts';

/**
 * Personal API keys (docs/decisions/015): `prl_` + 256 random bits, base64url. Only the SHA-256 is stored; the lookup
 * is an index probe on that hash, so what a timing side channel could reveal is a hash of an unguessable secret, as
 * for session tokens. The prefix kept for recognition is the key's first 12 characters (8 random ones: 48 bits).
 */
export const KEY_PREFIX = 'prl_';
const RECOGNITION_CHARS = 12;
/** Keys are given names to tell them apart; the contract's bounds for an expiry. */
export const KEY_NAME_MAX_CHARS = 100;
export const KEY_EXPIRY_MAX_DAYS = 365;

export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, hash: sha256Hex(key), prefix: key.slice(0, RECOGNITION_CHARS) };
}

/** A well-formed key (what an Authorization header must hold before the database is asked). */
export const API_KEY_SHAPE = /^prl_[A-Za-z0-9_-]{43}$/;

export interface ApiKeySummary {
  id: number;
  name: string;
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

/** One user's keys, newest first, with what their calls counted (the api_call rows, by the key's index). */
export async function listApiKeys(db: Db, userId: number): Promise<ApiKeySummary[]> {
  const r = await sql<{
    id: number;
    name: string;
    prefix: string;
    created: Date;
    expires: Date | null;
    revoked: Date | null;
    last: Date | null;
    n: string;
    pt: string | null;
    ct: string | null;
  }>`
    SELECT k.idapikey AS id, k.txname AS name, k.txprefix AS prefix, k.dtcreated AS created, k.dtexpires AS expires, k.dtrevoked AS revoked,
      c.last, coalesce(c.n, 0) AS n, c.pt, c.ct
    FROM chatbot_schema.api_key k
    LEFT JOIN LATERAL (
      SELECT max(a.tinf_start) AS last, count(*) AS n, sum(a.nprompt_tokens) AS pt, sum(a.ncompletion_tokens) AS ct
      FROM chatbot_schema.api_call a WHERE a.idapikey = k.idapikey
    ) c ON TRUE
    WHERE k.idappuser = ${userId}
    ORDER BY k.dtcreated DESC, k.idapikey DESC`.execute(db);
  return r.rows.map((x) => ({
    id: x.id,
    name: x.name,
    prefix: x.prefix,
    createdAt: x.created,
    expiresAt: x.expires,
    revokedAt: x.revoked,
    lastUsedAt: x.last,
    requests: Number(x.n),
    promptTokens: Number(x.pt ?? 0),
    completionTokens: Number(x.ct ?? 0),
  }));
}

/** Creates a key and its audit row together; returns the key (shown once, never stored) and its id. */
export async function createApiKey(
  db: Db,
  author: AuditAuthor,
  owner: { id: number; username: string },
  input: { name: string; expiresInDays: number | null },
): Promise<{ id: number; key: string; prefix: string }> {
  const { key, hash, prefix } = generateApiKey();
  const id = await db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('chatbot_schema.api_key')
      .values({
        idappuser: owner.id,
        txname: input.name,
        txprefix: prefix,
        txhash: hash,
        dtexpires: input.expiresInDays === null ? null : sql<Date>`now() + make_interval(days => ${input.expiresInDays})`,
      })
      .returning('idapikey')
      .executeTakeFirstOrThrow();
    await writeAudit(trx, author, 'create-api-key', [owner], { name: input.name, prefix, expiresInDays: input.expiresInDays ?? undefined });
    return row.idapikey;
  });
  return { id, key, prefix };
}

/**
 * Revokes one of `ownerId`'s keys (the next request with it gets 401: every call reads dtrevoked). False when the
 * owner has no such key or it was revoked already. Audited with the revocation, in one transaction.
 */
export async function revokeApiKey(db: Db, author: AuditAuthor, owner: { id: number; username: string }, keyId: number): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('chatbot_schema.api_key')
      .set({ dtrevoked: sql<Date>`now()` })
      .where('idapikey', '=', keyId)
      .where('idappuser', '=', owner.id)
      .where('dtrevoked', 'is', null)
      .returning(['txname', 'txprefix'])
      .executeTakeFirst();
    if (!row) return false;
    await writeAudit(trx, author, 'revoke-api-key', [owner], { name: row.txname, prefix: row.txprefix });
    return true;
  });
}
