import { type Kysely, sql } from 'kysely';

/**
 * Passkeys (WebAuthn, decision record 017).
 *
 * - `app_user.txwebauthn_user_id`: the account's WebAuthn user handle (random, base64url; never the id or e-mail,
 *   which the authenticator stores and shows). Made at the first registration; an assertion's user handle must be
 *   its owner's.
 * - `passkey`: one row per credential. The public key is COSE, base64url. `ncounter` is the last signature counter
 *   seen; it only goes up (a guarded UPDATE decides, see passkey-queries.ts). The backup flags say whether the
 *   passkey is synced (backed up) or bound to one device.
 * - `webauthn_challenge`: at most one outstanding challenge per (binding, purpose): the binding is the session or,
 *   before sign-in, the browser's anonymous CSRF cookie. Taking it deletes it (single use); it expires after 5 minutes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.app_user ADD COLUMN IF NOT EXISTS txwebauthn_user_id TEXT UNIQUE;
    CREATE TABLE IF NOT EXISTS chatbot_schema.passkey (
      idpasskey SERIAL PRIMARY KEY,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      txcredential_id TEXT NOT NULL UNIQUE,
      txpublic_key TEXT NOT NULL,
      ncounter BIGINT NOT NULL DEFAULT 0,
      txtransports TEXT NOT NULL DEFAULT '',
      txname TEXT NOT NULL,
      is_backup_eligible BOOLEAN NOT NULL DEFAULT false,
      is_backed_up BOOLEAN NOT NULL DEFAULT false,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      dtlast_used TIMESTAMPTZ
    );
    CREATE INDEX IF NOT EXISTS passkey_owner ON chatbot_schema.passkey (idappuser);
    CREATE TABLE IF NOT EXISTS chatbot_schema.webauthn_challenge (
      txbinding TEXT NOT NULL,
      txpurpose TEXT NOT NULL,
      txchallenge TEXT NOT NULL,
      idappuser INTEGER REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      dtexpires TIMESTAMPTZ NOT NULL,
      PRIMARY KEY (txbinding, txpurpose)
    );
    CREATE INDEX IF NOT EXISTS webauthn_challenge_expiry ON chatbot_schema.webauthn_challenge (dtexpires);
  `.execute(db);
}
