import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/** A challenge is answered within this long or not at all (WebAuthn's own timeout is shorter: 60 s by default). */
export const CHALLENGE_TTL_MS = 5 * 60 * 1000;

/** What a challenge is for: one outstanding per purpose, so a sign-in's challenge never completes a registration. */
export type ChallengePurpose = 'register' | 'sign-in' | 'second-factor' | 'step-up';

/**
 * WebAuthn challenges in the database (so any app process can finish a ceremony another began), bound to the
 * browser: its session, or before sign-in its anonymous CSRF cookie (`req.csrfBinding`). Issuing one replaces the
 * browser's earlier one for that purpose; taking one deletes it in the same statement, so it is answered once at most.
 */
export async function issueChallenge(db: Db, binding: string, purpose: ChallengePurpose, challenge: string, userId: number | null): Promise<void> {
  const expires = sql<Date>`now() + make_interval(secs => ${CHALLENGE_TTL_MS / 1000})`;
  await db
    .insertInto('chatbot_schema.webauthn_challenge')
    .values({ txbinding: binding, txpurpose: purpose, txchallenge: challenge, idappuser: userId, dtexpires: expires })
    .onConflict((oc) => oc.columns(['txbinding', 'txpurpose']).doUpdateSet({ txchallenge: challenge, idappuser: userId, dtexpires: expires }))
    .execute();
  // Anonymous visitors can leave challenges behind; expired ones go with the next issue (an indexed range delete).
  await db.deleteFrom('chatbot_schema.webauthn_challenge').where('dtexpires', '<', sql<Date>`now()`).execute();
}

/**
 * The browser's challenge for `purpose`, deleted as it is read (one statement: two requests racing with the same
 * response cannot both get it); undefined when there is none or it expired. Whether the response then verifies or
 * not, the challenge is gone: a ceremony that failed starts again with a new one.
 */
export async function takeChallenge(db: Db, binding: string, purpose: ChallengePurpose): Promise<{ challenge: string; userId: number | null } | undefined> {
  const row = await db
    .deleteFrom('chatbot_schema.webauthn_challenge')
    .where('txbinding', '=', binding)
    .where('txpurpose', '=', purpose)
    .returning(['txchallenge as challenge', 'idappuser as userId', sql<boolean>`dtexpires > now()`.as('fresh')])
    .executeTakeFirst();
  if (!row?.fresh) return undefined;
  return { challenge: row.challenge, userId: row.userId };
}
