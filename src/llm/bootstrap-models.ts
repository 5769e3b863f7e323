import { sql } from 'kysely';
import type { Config } from '../config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/database.ts';
import { createApiKeyBox } from './llm-queries.ts';

/**
 * OPENAI_BASE_URL + OPENAI_MODELS: a fresh install chats at once, one connection per model id. Only when the
 * `llm` table is empty, so models an admin later edits or deletes never come back at the next start.
 * Returns how many rows were inserted.
 *
 * Two processes starting together both run this: the lock (which conflicts with itself) makes the second wait,
 * then see the first one's rows, so the models are registered once.
 */
export async function bootstrapModels(db: Db, config: Config, box: SecretBox = createApiKeyBox(config.APP_SECRET)): Promise<number> {
  const baseUrl = config.OPENAI_BASE_URL;
  const models = [...new Set(config.OPENAI_MODELS)];
  if (!baseUrl || models.length === 0) return 0;
  return db.transaction().execute(async (trx) => {
    await sql`LOCK TABLE chatbot_schema.llm IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    const existing = await trx.selectFrom('chatbot_schema.llm').select('idllm').limit(1).executeTakeFirst();
    if (existing) return 0;
    const apiKey = config.OPENAI_API_KEY ? box.encrypt(config.OPENAI_API_KEY) : null;
    await trx
      .insertInto('chatbot_schema.llm')
      .values(models.map((model) => ({ txshortname: model.slice(0, 100), txbase_url: baseUrl, txapi_key_enc: apiKey, txmodel: model, is_enabled: true })))
      .execute();
    return models.length;
  });
}
