import { type Kysely, sql } from 'kysely';

/**
 * Search of one's chats (GET /chat/search, docs/decisions/022-chat-search.md): one row per chat holding the
 * full-text vector of its title, prompts and answers' markdown (PostgreSQL's `simple` configuration, so words of any
 * language match), owned by the chat's user, with GIN and user indexes. One row per chat rather than an expression
 * index per message: the results are chats, the owner filter and the ranking read one row each, and a user with
 * 10,000 chats among a million messages is answered in milliseconds (bench/search.ts). Its index is built here,
 * not after listen (src/db/deferred-indexes.ts): the table is empty now, so that costs nothing.
 *
 * Nothing heavy here: the table starts empty (its indexes cost nothing to build), triggers keep the rows of chats
 * written from now on, and the rows of chats written before are filled by a catch-up job after the server listens
 * (src/chat/search-backfill.ts): on an adopted database of a million messages that takes minutes, not the start.
 * No foreign key to chat: a key check would lock the chat row from inside an answer's last write, which a chat's
 * deletion (chat, then its answers) could meet in the other order; a trigger on chat removes the row instead.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS chatbot_schema.chat_search (
      idchat INTEGER PRIMARY KEY,
      idappuser INTEGER NOT NULL,
      tsv TSVECTOR NOT NULL
    );
    INSERT INTO chatbot_schema.catch_up (txjob) VALUES ('chat-search') ON CONFLICT DO NOTHING;
  `.execute(db);
  await createSearchIndex(db);

  // One part of a chat's text as a vector. to_tsvector refuses more than 1 MB of distinct words ("string is too long
  // for tsvector", program_limit_exceeded): such a chat (a pasted dump) is indexed on its first 100,000 characters
  // rather than failing the write that changed it, which would lose an answer.
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.search_vector(p_text text, p_weight "char") RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE AS $fn$
    BEGIN
      RETURN setweight(to_tsvector('simple'::regconfig, coalesce(p_text, '')), p_weight);
    EXCEPTION WHEN program_limit_exceeded THEN
      RETURN setweight(to_tsvector('simple'::regconfig, left(p_text, 100000)), p_weight);
    END $fn$;

    -- Title (weight A) before prompts (B) before answers (D): a chat named for the words ranks first. Answers count
    -- once finished (stopped, failed and interrupted ones included, as the chat shows them); the text of one being
    -- written changes every second and is not worth indexing until it ends.
    CREATE OR REPLACE FUNCTION chatbot_schema.chat_search_vector(p_idchat integer) RETURNS tsvector
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      v_title text;
      v_prompts text;
      v_answers text;
    BEGIN
      SELECT c.txtitle INTO v_title FROM chatbot_schema.chat c WHERE c.idchat = p_idchat;
      SELECT string_agg(m.txmessage, E'\n' ORDER BY m.idmessage) INTO v_prompts FROM chatbot_schema.message m WHERE m.idchat = p_idchat;
      SELECT string_agg(r.txmarkdown, E'\n' ORDER BY r.idresponse) INTO v_answers FROM chatbot_schema.response r
        WHERE r.idchat = p_idchat AND r.txstatus NOT IN ('pending', 'streaming');
      BEGIN
        RETURN chatbot_schema.search_vector(v_title, 'A') || chatbot_schema.search_vector(v_prompts, 'B')
          || chatbot_schema.search_vector(v_answers, 'D');
      EXCEPTION WHEN program_limit_exceeded THEN
        -- Each part fitted, their sum did not.
        RETURN chatbot_schema.search_vector(v_title, 'A') || chatbot_schema.search_vector(left(v_prompts, 100000), 'B')
          || chatbot_schema.search_vector(left(v_answers, 100000), 'D');
      END;
    END $fn$;

    -- Rewrites the rows of these chats (a chat deleted meanwhile gets none). Two writers of one chat at once (a rename
    -- while its answer ends) each see only their own change until the other commits: a vector computed before taking
    -- the row would lose the other's. So the row exists first (empty), is locked, and the vector is computed by the
    -- UPDATE, which PostgreSQL re-evaluates once a concurrent writer of the row has committed (READ COMMITTED), with
    -- chat_search_vector VOLATILE so that its reads see that commit. Rows are locked in id order (no deadlock between
    -- two statements that touch several chats).
    CREATE OR REPLACE FUNCTION chatbot_schema.refresh_chat_search(p_idchats integer[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      INSERT INTO chatbot_schema.chat_search (idchat, idappuser, tsv)
      SELECT c.idchat, c.idappuser, ''::tsvector FROM chatbot_schema.chat c WHERE c.idchat = ANY(p_idchats)
      ORDER BY c.idchat ON CONFLICT (idchat) DO NOTHING;
      PERFORM 1 FROM chatbot_schema.chat_search s WHERE s.idchat = ANY(p_idchats) ORDER BY s.idchat FOR UPDATE;
      UPDATE chatbot_schema.chat_search s SET tsv = chatbot_schema.chat_search_vector(s.idchat) WHERE s.idchat = ANY(p_idchats);
    END $fn$;
  `.execute(db);

  // Statement-level triggers where many rows may change at once (an import's inserts, a chat's cascade): each chat
  // is rewritten once per statement. Row-level ones with WHEN where a column list matters (transition tables are not
  // allowed with one): the answer's last write fires, its per-second partial saves (still 'streaming') do not.
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.chat_search_after_rows() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        PERFORM chatbot_schema.refresh_chat_search(ARRAY(SELECT DISTINCT o.idchat FROM old_rows o));
      ELSE
        PERFORM chatbot_schema.refresh_chat_search(ARRAY(SELECT DISTINCT n.idchat FROM new_rows n));
      END IF;
      RETURN NULL;
    END $fn$;

    CREATE OR REPLACE FUNCTION chatbot_schema.chat_search_after_row() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
      PERFORM chatbot_schema.refresh_chat_search(ARRAY[NEW.idchat]);
      RETURN NULL;
    END $fn$;

    CREATE OR REPLACE FUNCTION chatbot_schema.chat_search_after_chat_delete() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
      DELETE FROM chatbot_schema.chat_search s USING old_rows o WHERE s.idchat = o.idchat;
      RETURN NULL;
    END $fn$;

    DROP TRIGGER IF EXISTS chat_search_message_insert ON chatbot_schema.message;
    CREATE TRIGGER chat_search_message_insert AFTER INSERT ON chatbot_schema.message
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_rows();
    DROP TRIGGER IF EXISTS chat_search_message_delete ON chatbot_schema.message;
    CREATE TRIGGER chat_search_message_delete AFTER DELETE ON chatbot_schema.message
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_rows();
    DROP TRIGGER IF EXISTS chat_search_message_update ON chatbot_schema.message;
    CREATE TRIGGER chat_search_message_update AFTER UPDATE OF txmessage ON chatbot_schema.message
      FOR EACH ROW WHEN (OLD.txmessage IS DISTINCT FROM NEW.txmessage) EXECUTE FUNCTION chatbot_schema.chat_search_after_row();

    DROP TRIGGER IF EXISTS chat_search_response_insert ON chatbot_schema.response;
    CREATE TRIGGER chat_search_response_insert AFTER INSERT ON chatbot_schema.response
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_rows();
    DROP TRIGGER IF EXISTS chat_search_response_delete ON chatbot_schema.response;
    CREATE TRIGGER chat_search_response_delete AFTER DELETE ON chatbot_schema.response
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_rows();
    DROP TRIGGER IF EXISTS chat_search_response_update ON chatbot_schema.response;
    CREATE TRIGGER chat_search_response_update AFTER UPDATE OF txmarkdown, txstatus ON chatbot_schema.response
      FOR EACH ROW WHEN (NEW.txstatus NOT IN ('pending', 'streaming')
        AND (OLD.txstatus IS DISTINCT FROM NEW.txstatus OR OLD.txmarkdown IS DISTINCT FROM NEW.txmarkdown))
      EXECUTE FUNCTION chatbot_schema.chat_search_after_row();

    DROP TRIGGER IF EXISTS chat_search_chat_insert ON chatbot_schema.chat;
    CREATE TRIGGER chat_search_chat_insert AFTER INSERT ON chatbot_schema.chat
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_rows();
    DROP TRIGGER IF EXISTS chat_search_chat_title ON chatbot_schema.chat;
    CREATE TRIGGER chat_search_chat_title AFTER UPDATE OF txtitle ON chatbot_schema.chat
      FOR EACH ROW WHEN (OLD.txtitle IS DISTINCT FROM NEW.txtitle) EXECUTE FUNCTION chatbot_schema.chat_search_after_row();
    DROP TRIGGER IF EXISTS chat_search_chat_delete ON chatbot_schema.chat;
    CREATE TRIGGER chat_search_chat_delete AFTER DELETE ON chatbot_schema.chat
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.chat_search_after_chat_delete();
  `.execute(db);
}

/**
 * One GIN index over (owner, vector), with btree_gin (contrib, a trusted extension since PostgreSQL 13; PGlite loads
 * it, embeddedOptions): a search reads only the posting lists of this user's rows that hold the words, never the
 * vectors themselves (which live in TOAST, ~3.5 KB each). With a vector-only GIN index and a btree on the owner
 * instead, the planner took the owner's index and checked every one of their 10,000 vectors (230 ms measured), or
 * scanned the table (1.8 s) for the most common word. Without btree_gin (a server without contrib) the vector-only
 * index is the fallback: correct, slower for common words.
 */
async function createSearchIndex(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gin') AS ok`.execute(db);
  if (rows[0]?.ok) {
    await sql`
      CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public;
      CREATE INDEX IF NOT EXISTS chat_search_user_tsv_idx ON chatbot_schema.chat_search USING gin (idappuser, tsv);
    `.execute(db);
  } else {
    await sql`CREATE INDEX IF NOT EXISTS chat_search_tsv_idx ON chatbot_schema.chat_search USING gin (tsv)`.execute(db);
  }
}
