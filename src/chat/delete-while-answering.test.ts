import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { type ChatWorld, newChat, parseSse, startChatWorld } from '../../test/chat-fixtures.ts';
import { testDbKind } from '../../test/database.ts';
import { serverUrlOf } from '../db/database.ts';
import { deleteChat } from './chat-queries.ts';

// Deleting a chat while an answer to it begins. begin_answer locks the chat row first and then inserts a response
// that references the chat's last message; a delete that removed the messages first and only then reached the chat
// row held what begin_answer waited for and waited for what it held: a deadlock, answered 500. The delete takes the
// chat row first too, so the two queue.

let w: ChatWorld;
before(async () => {
  w = await startChatWorld();
});
after(() => w.close());

const onlyPostgres = testDbKind !== 'postgres' && 'needs two connections: PGlite has one';

test('a delete arriving while an answer begins waits for it instead of deadlocking (bites only on PostgreSQL)', { skip: onlyPostgres }, async () => {
  const chatId = await newChat(w.user, w.modelId);
  assert.equal(parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'hello' })).body).at(-1)?.event, 'done');
  const { idmessage } = await w.t.database.db.selectFrom('chatbot_schema.message').select('idmessage').where('idchat', '=', chatId).executeTakeFirstOrThrow();

  // begin_answer's order of locks, held open on a connection of its own: the chat row, then (below) a new response.
  const answer = new pg.Client({ connectionString: serverUrlOf(w.t.database.db) });
  await answer.connect();
  try {
    await answer.query('BEGIN');
    await answer.query('SELECT 1 FROM chatbot_schema.chat WHERE idchat = $1 FOR UPDATE', [chatId]);
    const deleting = deleteChat(w.t.database.db, chatId);
    await new Promise((r) => setTimeout(r, 300)); // the delete is under way and waiting
    await answer.query(
      `INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, tinf_start, txstatus)
       VALUES ($1, $2, $3, 'x', 'x', now(), 'pending')`,
      [chatId, idmessage, w.modelId],
    );
    await answer.query('COMMIT');
    await deleting;
  } finally {
    await answer.end();
  }
  const left = await w.t.database.db.selectFrom('chatbot_schema.chat').select('idchat').where('idchat', '=', chatId).executeTakeFirst();
  assert.equal(left, undefined, 'the chat is deleted, with the answer begun meanwhile');
});
