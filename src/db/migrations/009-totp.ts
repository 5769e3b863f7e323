import { type Kysely, sql } from 'kysely';

/**
 * TOTP two-factor authentication (src/auth/totp*.ts).
 *
 * - `totp_last_step`: the time step (unix seconds / 30) of the last code accepted for the account. A code of that
 *   step or an earlier one is never accepted again (RFC 6238 §5.2), decided by one conditional UPDATE.
 * - `txtotp_pending_secret` / `dttotp_pending_expires`: an enrolment not yet confirmed, sealed like the real secret.
 *   Sign-in never reads it, so an abandoned enrolment changes nothing and simply expires.
 * - `recovery_code`: argon2id hashes of single-use codes (codes under 112 bits need a password hash, ASVS 6.5.2).
 *
 * Adopted prototype secrets (plaintext base32 in `totp_secret`) are sealed right after the migrations, by
 * sealAdoptedTotpSecrets (src/auth/totp-queries.ts), which buildApp runs: the key comes from APP_SECRET, which a
 * migration does not have. The server seals them before it answers its first request, so no sign-in sees plaintext.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.app_user
      ADD COLUMN IF NOT EXISTS totp_last_step BIGINT,
      ADD COLUMN IF NOT EXISTS txtotp_pending_secret TEXT,
      ADD COLUMN IF NOT EXISTS dttotp_pending_expires TIMESTAMPTZ;
    CREATE TABLE IF NOT EXISTS chatbot_schema.recovery_code (
      idrecovery_code SERIAL PRIMARY KEY,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      txhash TEXT NOT NULL,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      dtused TIMESTAMPTZ
    );
    CREATE INDEX IF NOT EXISTS recovery_code_unused ON chatbot_schema.recovery_code (idappuser) WHERE dtused IS NULL;
  `.execute(db);
}
