import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../src/db/database.ts';

/**
 * A large database in the shape of an adopted one, built in SQL with generate_series (seconds, not minutes):
 * `users` accounts with `chatsPerUser` chats each, `messagesPerChat` prompts per chat, one answer per prompt,
 * and a session per account. The benchmark's own user (registered through the form) gets the same share, so its
 * page lists `chatsPerUser` chats like anyone's.
 */
export interface PageWorldSize {
  users: number;
  chatsPerUser: number;
  messagesPerChat: number;
}

export const worldMessages = (size: PageWorldSize) => (size.users + 1) * size.chatsPerUser * size.messagesPerChat;

const MODELS = 5;

export async function fillPageWorld(db: Db, size: PageWorldSize): Promise<void> {
  await bulkLoad(db, (trx) => fillAccounts(trx, size));
  await sql`ANALYZE`.execute(db);
}

/**
 * One transaction with foreign-key triggers off, as pg_restore loads data: three key checks per answer row are
 * most of the load time otherwise (a minute for a million rows). Every key written here refers to a row
 * inserted just before it, so nothing unchecked can be wrong.
 */
export async function bulkLoad(db: Db, fill: (trx: Db) => Promise<void>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL session_replication_role = replica`.execute(trx);
    await fill(trx);
  });
}

async function fillAccounts(db: Db, size: PageWorldSize): Promise<void> {
  await sql`
    INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel)
    SELECT 'Model ' || i, 'http://127.0.0.1:9/v1', 'model-' || i FROM generate_series(1, ${MODELS}::int) i`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
    SELECT 'user' || i, 'user' || i || '@example.com', NULL FROM generate_series(1, ${size.users}::int) i`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.user_role (idappuser, idrole)
    SELECT idappuser, 2 FROM chatbot_schema.app_user ON CONFLICT DO NOTHING`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.session (idsession, idappuser, dtexpires)
    SELECT md5('a' || idappuser) || md5('b' || idappuser), idappuser, now() + interval '30 days'
    FROM chatbot_schema.app_user WHERE password IS NULL`.execute(db);
  await fillChats(db, size, sql`TRUE`);
}

/** Chats with their prompts and answers for the accounts `who` selects (a condition on `u`, the app_user row). */
async function fillChats(db: Db, size: PageWorldSize, who: RawBuilder<unknown>): Promise<void> {
  const theirs = sql`c.idappuser IN (SELECT u.idappuser FROM chatbot_schema.app_user u WHERE ${who})`;
  await sql`
    INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle, dtcreated, dtupdated)
    SELECT u.idappuser, m.first + g % ${MODELS}::int, 'A chat about topic ' || g,
           now() - g * interval '1 hour', now() - g * interval '1 hour'
    FROM chatbot_schema.app_user u
    CROSS JOIN generate_series(1, ${size.chatsPerUser}::int) g
    CROSS JOIN (SELECT min(idllm) AS first FROM chatbot_schema.llm) m
    WHERE ${who}`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
    SELECT c.idchat, 'Question ' || g || ': how would you explain this to a colleague who has not seen it before?', c.dtcreated
    FROM chatbot_schema.chat c CROSS JOIN generate_series(1, ${size.messagesPerChat}::int) g
    WHERE ${theirs}`.execute(db);
  await sql`
    INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, txstatus, tinf_start, tinf_end)
    SELECT m.idchat, m.idmessage, c.idllm,
           'An answer of a few sentences, as a model writes them: **bold**, a list, and some code.',
           '<p>An answer of a few sentences, as a model writes them: <strong>bold</strong>, a list, and some code.</p>',
           'complete', m.dtcreated, m.dtcreated + interval '3 seconds'
    FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
    WHERE ${theirs}`.execute(db);
}

/** The benchmark's own user, registered after the fill (so it is not the first, Admin, account), gets the same share. */
export async function fillChatsOf(db: Db, size: PageWorldSize, userId: number): Promise<void> {
  await bulkLoad(db, (trx) => fillChats(trx, size, sql`u.idappuser = ${userId}`));
  await sql`ANALYZE`.execute(db);
}
