import { type Kysely, sql } from 'kysely';

/**
 * Accounts reached through an OpenID Connect provider (Google). The identity is the pair (issuer, `sub`) — never
 * the e-mail: an address can change hands or be re-verified by someone else, the subject of one issuer cannot.
 * `txemail` is the address the provider last said (for display and for noticing a change), not a key.
 * A pending link (an existing local account with that e-mail, waiting for its password) is not stored here: it
 * lives in a short-lived encrypted HttpOnly cookie on the browser that came back from the provider.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS chatbot_schema.oauth_identity (
      txissuer TEXT NOT NULL,
      txsubject TEXT NOT NULL,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      txemail TEXT,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      dtlast_used TIMESTAMPTZ,
      PRIMARY KEY (txissuer, txsubject)
    );
    CREATE INDEX IF NOT EXISTS oauth_identity_user_idx ON chatbot_schema.oauth_identity (idappuser);
  `.execute(db);
}
