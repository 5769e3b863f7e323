import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../src/db/database.ts';
import { bulkLoad } from './page-world.ts';

/**
 * A database as the Flask prototype leaves it after long use, before Parley has ever run on it: the prototype's
 * schema (test/fixtures/flask-prototype.sql, with its few rows) and then `users` accounts × `chatsPerUser` chats ×
 * `messagesPerChat` prompts, each answered with markdown of a few paragraphs, a list and a code block, and the
 * prototype's HTML of it. Built in SQL with generate_series, foreign-key triggers off (page-world.ts's bulkLoad).
 */
export interface AdoptedWorldSize {
  users: number;
  chatsPerUser: number;
  messagesPerChat: number;
}

export const adoptedMessages = (size: AdoptedWorldSize) => size.users * size.chatsPerUser * size.messagesPerChat;

const fixture = readFileSync(path.resolve(import.meta.dirname, '../test/fixtures/flask-prototype.sql'), 'utf8');

/** What a model writes: a heading, emphasis, a link, a list, a code block; `{n}` (the message id) makes each row differ. */
const ANSWER_MARKDOWN = [
  '## Answer {n}',
  '',
  'Here is what I would do, **step by step**, with a little _care_:',
  '',
  '1. Read the [documentation](https://example.com/docs) first.',
  '2. Try it on a copy.',
  '3. Measure, then keep what helps.',
  '',
  '```python',
  'def answer(x):',
  '    return x * {n}',
  '```',
  '',
  'That is all; ask again if anything is unclear.',
].join('\n');

export async function fillAdoptedWorld(db: Db, size: AdoptedWorldSize): Promise<void> {
  await sql.raw(fixture).execute(db);
  await bulkLoad(db, async (trx) => {
    await sql`
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
      SELECT 'adopted' || i, 'adopted' || i || '@example.com', '' FROM generate_series(1, ${size.users}::int) i`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.user_role (idappuser, idrole)
      SELECT idappuser, 2 FROM chatbot_schema.app_user WHERE txusername LIKE 'adopted%'`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.chat (idappuser, idllm)
      SELECT u.idappuser, 1 + g % 2 FROM chatbot_schema.app_user u CROSS JOIN generate_series(1, ${size.chatsPerUser}::int) g
      WHERE u.txusername LIKE 'adopted%'`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.message (idchat, txmessage)
      SELECT c.idchat, 'Question ' || g || ': how would you explain this to a colleague?'
      FROM chatbot_schema.chat c CROSS JOIN generate_series(1, ${size.messagesPerChat}::int) g
      WHERE c.idchat > 2`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent)
      SELECT m.idchat, m.idmessage, c.idllm, md, '<div>' || md || '</div>'
      FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
      CROSS JOIN LATERAL (SELECT replace(${ANSWER_MARKDOWN}::text, '{n}', m.idmessage::text) AS md) a
      WHERE m.idchat > 2`.execute(trx);
  });
  await sql`ANALYZE`.execute(db);
}
