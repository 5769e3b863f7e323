import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createApiKeyBox, createModel } from '../llm/llm-queries.ts';
import { createUser } from '../users/user-queries.ts';
import { setUserLimits } from './group-queries.ts';
import { admitPrompt, settleUsage } from './usage-limits.ts';

// Random sequences of prompts, answers (settled with other token counts than reserved), failures (which give the
// prompt back) and limit changes, against a model of the rules kept in this file: the database never admits more than
// the limits allow, and never refuses a prompt that fits them. A prompt admitted while no limit applies reserves
// nothing (migration 031: no counter is touched) and its answer settles nothing; the counter starts from the
// statistics, which direct admitPrompt calls leave empty.

let database: OpenedDatabase;
let userId = 0;
let modelId = 0;
before(async () => {
  database = await openTestDatabase();
  userId = (await createUser(database.db, { username: 'prop', email: 'prop@example.com', passwordHash: 'x' })).id;
  modelId = await createModel(database.db, createApiKeyBox('property-secret-that-is-long-enough-01234'), {
    name: 'm',
    baseUrl: 'http://127.0.0.1:9/v1',
    model: 'm',
    enabled: true,
    apiKey: null,
  });
});
after(() => database.close());

type Op =
  | { kind: 'prompt'; estimate: number }
  | { kind: 'end'; tokens: number; failed: boolean }
  | { kind: 'limits'; prompts: number | null; tokens: number | null };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('prompt' as const), estimate: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('end' as const), tokens: fc.integer({ min: 0, max: 60 }), failed: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('limits' as const),
      prompts: fc.option(fc.integer({ min: 0, max: 8 }), { nil: null }),
      tokens: fc.option(fc.integer({ min: 0, max: 200 }), { nil: null }),
    }),
  },
);

test('never more admitted than the limits allow, never refused while a prompt fits them', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      await database.db.deleteFrom('chatbot_schema.usage_counter').execute();
      await setUserLimits(database.db, userId, { prompts_per_day: null, tokens_per_day: null, tokens_per_month: null });
      const model = { prompts: 0, tokens: 0, limitPrompts: null as number | null, limitTokens: null as number | null };
      const open: Array<{ usageDay: string | null; reserved: number }> = [];
      for (const o of ops) {
        if (o.kind === 'limits') {
          await setUserLimits(database.db, userId, { prompts_per_day: o.prompts, tokens_per_day: o.tokens, tokens_per_month: null });
          model.limitPrompts = o.prompts;
          model.limitTokens = o.tokens;
        } else if (o.kind === 'prompt') {
          const fits =
            (model.limitPrompts === null || model.prompts + 1 <= model.limitPrompts) &&
            (model.limitTokens === null || model.tokens + o.estimate <= model.limitTokens);
          const got = await admitPrompt(database.db, { userId, modelId, estimatedTokens: o.estimate });
          assert.equal(got.outcome, fits ? 'ok' : 'over_limit', JSON.stringify({ model, o }));
          const limited = model.limitPrompts !== null || model.limitTokens !== null;
          if (got.outcome === 'ok') {
            assert.equal(got.usageDay !== null, limited, 'a reservation exactly when a limit applies');
            if (limited) {
              model.prompts++;
              model.tokens += o.estimate;
            }
            open.push({ usageDay: got.usageDay, reserved: got.reservedTokens });
          }
        } else {
          const answer = open.shift();
          if (!answer) continue;
          await settleUsage(database.db, { userId, usageDay: answer.usageDay, reservedTokens: answer.reserved, tokens: o.tokens, failed: o.failed });
          if (answer.usageDay === null) continue;
          model.tokens += o.tokens - answer.reserved;
          if (o.failed) model.prompts--;
        }
      }
      const { rows } = await sql<{ nprompts: number; ntokens: number }>`
        SELECT nprompts, ntokens FROM chatbot_schema.usage_counter WHERE idappuser = ${userId} AND txperiod = 'day'`.execute(database.db);
      if (rows[0]) assert.deepEqual({ prompts: Number(rows[0].nprompts), tokens: Number(rows[0].ntokens) }, { prompts: model.prompts, tokens: model.tokens });
    }),
    { numRuns: 25 },
  );
});
