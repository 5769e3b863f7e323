import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addModel, type ChatWorld, newChat, startChatWorld } from '../../test/chat-fixtures.ts';
import { testDbKind } from '../../test/database.ts';
import { pngImage } from '../../test/image-fixtures.ts';

// An image goes only to a model marked vision, and the model is the one begin_answer picks under the chat's lock:
// a switch of the chat's model racing a prompt with an image either comes first (the prompt is refused) or after
// (the image went to the vision model). Never an image stored with an answer from a model that does not take images.

let w: ChatWorld;
let vision: number;
before(async () => {
  w = await startChatWorld({ MAX_CONCURRENT_GENERATIONS: '50' });
  vision = await addModel(w.t.database, w.llm.baseUrl, 'Fake vision');
  await w.t.database.db.updateTable('chatbot_schema.llm').set({ vision: true }).where('idllm', '=', vision).execute();
});
after(() => w.close());

const suffix = testDbKind === 'postgres' ? '' : ' (bites only on PostgreSQL)';

test(`20 prompts with an image, each racing a switch of its chat to a model without vision: no image reaches it${suffix}`, async () => {
  const image = pngImage().toString('base64');
  const outcomes = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const chatId = await newChat(w.user, vision);
      const [sent] = await Promise.all([
        w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'What is it?', attachments: [{ name: 'p.png', data: image }] }),
        w.user.app.inject({
          method: 'PATCH',
          url: `/api/chats/${chatId}`,
          payload: { llm: w.modelId },
          headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
        }),
      ]);
      assert.ok(sent.statusCode === 200 || sent.statusCode === 400, `${sent.statusCode} ${sent.body}`);
      return sent.statusCode;
    }),
  );
  const wrong = await w.t.database.db
    .selectFrom('chatbot_schema.attachment as a')
    .innerJoin('chatbot_schema.response as r', 'r.idmessage', 'a.idmessage')
    .innerJoin('chatbot_schema.llm as l', 'l.idllm', 'r.idllm')
    .select(['a.idattachment', 'l.txshortname'])
    .where('a.txkind', '=', 'image')
    .where('l.vision', '=', false)
    .execute();
  assert.deepEqual(wrong, [], 'an image was stored with an answer from a model without vision');
  const images = await w.t.database.db.selectFrom('chatbot_schema.attachment').select('idattachment').where('txkind', '=', 'image').execute();
  assert.equal(images.length, outcomes.filter((s) => s === 200).length, 'every accepted prompt stored its image, every refused one none');
});
