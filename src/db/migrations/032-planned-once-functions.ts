import { type Kysely, sql } from 'kysely';

/**
 * The small functions every prompt and API call runs, planned once per connection instead of on every call
 * (docs/decisions/026-api-calls-off-the-path.md). A `LANGUAGE sql` function whose body reads a table is never inlined
 * by the planner (a FROM or a sub-select forbids it), and before PostgreSQL 18 such a body is parsed and planned anew
 * at each statement that calls it. `may_use_model` cost 0.25 ms a call that way against 0.02 ms as PL/pgSQL, which
 * caches its plans (pgbench on the 2-core machine, PostgreSQL 15), and an API call's admission called it twice
 * (directly and in admit_prompt): 0.58 ms of database time became 0.18. Same bodies, same results (NULL for a model
 * that does not exist, which admit_prompt reads as 'not_found').
 *
 * `effective_limits` and `usage_counter_seed` stay SQL: they are table functions, which the planner does inline.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.may_use_model(p_idappuser INTEGER, p_idllm INTEGER) RETURNS BOOLEAN
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
      RETURN (SELECT NOT l.is_restricted OR EXISTS (
          SELECT 1 FROM chatbot_schema.llm_group lg
          JOIN chatbot_schema.user_group_member m ON m.idgroup = lg.idgroup AND m.idappuser = p_idappuser
          WHERE lg.idllm = l.idllm)
        FROM chatbot_schema.llm l WHERE l.idllm = p_idllm);
    END $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.usage_day(ts TIMESTAMPTZ) RETURNS DATE
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
      RETURN (ts AT TIME ZONE (SELECT s.txtimezone FROM chatbot_schema.usage_rollup_state s))::date;
    END $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.usage_counts(p_idchat INTEGER) RETURNS BOOLEAN
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
      RETURN (SELECT s.nbackfill_cursor IS NULL OR p_idchat <= s.nbackfill_cursor OR p_idchat > s.nbackfill_upto
        FROM chatbot_schema.usage_rollup_state s);
    END $$;
  `.execute(db);
}
