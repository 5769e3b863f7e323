import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import OpenAI from 'openai';
import { addModel, type ChatWorld, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import { FAKE_TOOL_ARGUMENTS } from '../llm/fake-llm-server.ts';
import { journalOf } from './call-journal.ts';

/**
 * The OpenAI-compatible API through the official `openai` SDK, against the app listening on a real port and the fake
 * upstream: what a script or an editor sees.
 */
let w: ChatWorld;
let baseURL: string;
let key: string;
let client: OpenAI;
const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

before(async () => {
  w = await startChatWorld();
  await w.t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = w.t.app.server.address();
  baseURL = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1`;
  await w.user.get('/settings/api-keys');
  const res = await w.user.postJson('/api/keys', { name: 'laptop', expires_in_days: 30 });
  assert.equal(res.statusCode, 201, res.body);
  key = (res.json() as { key: string }).key;
  client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0 });
});
after(async () => {
  w.t.app.server.closeAllConnections(); // the SDK's keep-alive sockets would hold the close for keepAliveTimeout
  await w.close();
});

/** The api_call rows, once the journal has written what it holds (src/api/call-journal.ts writes them in batches). */
const apiCalls = async () => {
  await journalOf(w.t.database.db)?.flush();
  return w.t.database.db.selectFrom('chatbot_schema.api_call').selectAll().orderBy('idapicall').execute();
};
/** The newest call once recorded as ended: the end is written after the answer has gone out. */
const lastCall = () =>
  waitFor(async () => {
    const call = (await apiCalls()).at(-1);
    return call && call.txstatus !== 'running' ? call : undefined;
  });

describe('the openai SDK as the client', () => {
  test('lists the models the key may use, by their Parley names', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['Fake echo']);
  });

  test('a completion, with usage; the call is recorded without its content', async () => {
    const answer = await client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: 'Hello API' }], temperature: 0.2, seed: 7 });
    assert.match(answer.choices[0]?.message.content ?? '', /^You said: Hello API/);
    assert.equal(answer.model, 'Fake echo');
    assert.ok((answer.usage?.prompt_tokens ?? 0) > 0 && (answer.usage?.completion_tokens ?? 0) > 0);
    const sent = w.llm.lastRequest as Record<string, unknown>;
    assert.equal(sent.model, 'fake-echo', 'the upstream gets its own model id');
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.seed, 7);
    const call = await lastCall();
    assert.equal(call?.txstatus, 'complete');
    assert.equal(call?.nprompt_tokens, answer.usage?.prompt_tokens);
    assert.equal(call?.ncompletion_tokens, answer.usage?.completion_tokens);
    assert.equal(call?.is_estimated, false);
    assert.ok(call?.tinf_end && call.tfirst_token && call.tinf_start <= call.tfirst_token && call.tfirst_token <= call.tinf_end);
    const stored = JSON.stringify(await sql`SELECT * FROM chatbot_schema.api_call`.execute(w.t.database.db));
    assert.doesNotMatch(stored, /Hello API|You said/);
  });

  test('a stream with include_usage: chunks, then the usage chunk; without it, no usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'Fake echo',
      messages: [{ role: 'user', content: 'Stream me' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      assert.equal(chunk.model, 'Fake echo');
    }
    assert.match(text, /^You said: Stream me/);
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 0);
    const call = await lastCall();
    assert.equal(call?.txstatus, 'complete');
    assert.equal(call?.ncompletion_tokens, usage.completion_tokens);

    const plain = await client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: 'again' }], stream: true });
    let sawUsage = false;
    for await (const chunk of plain) if (chunk.usage) sawUsage = true;
    assert.equal(sawUsage, false, 'no usage chunk the caller did not ask for');
    assert.ok(((await lastCall())?.ncompletion_tokens ?? 0) > 0, 'but it is counted');
  });

  test('tools: tool_calls deltas come through unchanged, streamed and whole', async () => {
    const stream = await client.chat.completions.create({
      model: 'Fake echo',
      messages: [{ role: 'user', content: '[[tool]]' }],
      tools,
      tool_choice: 'auto',
      stream: true,
    });
    let args = '';
    let name = '';
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        args += call.function?.arguments ?? '';
        name ||= call.function?.name ?? '';
      }
    }
    assert.equal(name, 'get_weather');
    assert.equal(args, FAKE_TOOL_ARGUMENTS);
    assert.deepEqual((w.llm.lastRequest as { tools: unknown }).tools, tools);
    const whole = await client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: '[[tool]]' }], tools });
    assert.equal(whole.choices[0]?.finish_reason, 'tool_calls');
    assert.equal(
      whole.choices[0]?.message.tool_calls?.[0]?.type === 'function' && whole.choices[0].message.tool_calls[0].function.arguments,
      FAKE_TOOL_ARGUMENTS,
    );
  });

  test('an upstream without usage: the tokens are estimated and marked so', async () => {
    const answer = await client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: 'count me [[no-usage]]' }] });
    assert.ok((answer.usage?.completion_tokens ?? 0) > 0);
    const call = await lastCall();
    assert.equal(call?.is_estimated, true);
    assert.ok((call?.ncompletion_tokens ?? 0) > 0);
  });
});

describe('errors, in OpenAI shape with their statuses', () => {
  const expectError = async (promise: Promise<unknown>, status: number, code?: string) => {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, status, err.message);
      if (code) assert.equal(err.code, code);
      return true;
    });
  };

  test('400: an unknown parameter, a bad message', async () => {
    await expectError(client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: 'x' }], bogus: 1 } as never), 400);
    await expectError(client.chat.completions.create({ model: 'Fake echo', messages: [] }), 400);
  });

  test('401: a wrong key (WWW-Authenticate: Bearer)', async () => {
    const wrong = new OpenAI({ baseURL, apiKey: `prl_${'A'.repeat(43)}`, maxRetries: 0 });
    await expectError(wrong.models.list(), 401, 'invalid_api_key');
    const res = await fetch(`${baseURL}/models`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
  });

  test('403: a model turned off; 404: a model nobody has', async () => {
    await addModel(w.t.database, w.llm.baseUrl, 'Switched off', false);
    await expectError(client.chat.completions.create({ model: 'Switched off', messages: [{ role: 'user', content: 'x' }] }), 403);
    await expectError(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), 404, 'model_not_found');
  });

  test('502: the upstream failing, with our message and never its text', async () => {
    const before = (await apiCalls()).length;
    await assert.rejects(client.chat.completions.create({ model: 'Fake echo', messages: [{ role: 'user', content: '[[fail]]' }] }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, 502);
      assert.doesNotMatch(err.message, /on purpose|127\.0\.0\.1/);
      return true;
    });
    assert.equal((await apiCalls()).length, before + 1);
    assert.equal((await lastCall()).txstatus, 'error');
  });

  test('429: after 20 wrong keys from one address, even the right key waits (Retry-After)', async () => {
    const wrong = new OpenAI({ baseURL, apiKey: `prl_${'B'.repeat(43)}`, maxRetries: 0 });
    for (let i = 0; i < 20; i++) await expectError(wrong.models.list(), i < 19 ? 401 : 429);
    const res = await fetch(`${baseURL}/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    await w.t.database.db.deleteFrom('chatbot_schema.login_throttle').execute();
  });
});

describe('a caller that goes away', () => {
  test('cancels the upstream request and is recorded as client_gone', async () => {
    const abandonedBefore = w.llm.abandonedStreams;
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'Fake echo', messages: [{ role: 'user', content: '[[slow:200]] [[long:50]]' }], stream: true },
      { signal: controller.signal },
    );
    // The SDK ends an aborted stream quietly.
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) controller.abort();
    assert.equal((await lastCall()).txstatus, 'client_gone');
    await waitFor(async () => (w.llm.abandonedStreams > abandonedBefore ? true : undefined));
  });
});

describe('counted like chat, and split by source', () => {
  const rollups = () => rollupsByKey(w.t.database.db);

  test('every API call is in the rollups as source api, once; a recount from the rows gives the same numbers', async () => {
    const { newChat } = await import('../../test/chat-fixtures.ts');
    await w.user.postJson(`/api/chats/${await newChat(w.user, w.modelId)}/messages`, { content: 'from the web' });
    const calls = await apiCalls();
    const db = w.t.database.db;
    const api = await sql<{ p: string; r: string; ct: string }>`
      SELECT sum(nprompts) AS p, sum(nresponses) AS r, sum(ncompletion_tokens) AS ct FROM chatbot_schema.usage_day_model WHERE txsource = 'api'`.execute(db);
    assert.equal(Number(api.rows[0]?.p), calls.length, 'one prompt per call');
    assert.equal(Number(api.rows[0]?.r), calls.filter((c) => c.txstatus !== 'running').length, 'one answer per finished call');
    assert.equal(
      Number(api.rows[0]?.ct),
      calls.reduce((n, c) => n + (c.ncompletion_tokens ?? 0), 0),
    );
    const web = await sql<{ p: string }>`SELECT sum(nprompts) AS p FROM chatbot_schema.usage_day_model WHERE txsource = 'web'`.execute(db);
    assert.equal(Number(web.rows[0]?.p), 1);

    const before = await rollups();
    const { rebuildUsageRollups } = await import('../db/migrations/011-usage-rollups.ts');
    await rebuildUsageRollups(db, w.t.config.STATS_TIMEZONE);
    assert.deepEqual(await rollups(), before, 'a recount (a STATS_TIMEZONE change) counts the API calls again');
  });

  test('/admin/stats, /settings/usage and the user page show web and API apart', async () => {
    const calls = (await apiCalls()).length;
    const stats = await w.admin.get('/admin/stats?range=7d');
    assert.equal(stats.statusCode, 200);
    const apiRow = /<tr data-source="api"><th scope="row">API<\/th><td class="text-end">([\d,]+)<\/td>/.exec(stats.body);
    assert.equal(apiRow?.[1], String(calls), stats.body.slice(stats.body.indexOf('by-source'), stats.body.indexOf('by-source') + 800));
    assert.match(stats.body, /<tr data-source="web"><th scope="row">Web<\/th><td class="text-end">1<\/td>/);
    const apiOnly = await w.admin.get('/admin/stats?range=7d&source=api');
    assert.equal(apiOnly.statusCode, 200);
    assert.match(apiOnly.body, /aria-current="page" href="\/admin\/stats\?range=7d&amp;source=api">API</);
    assert.equal((await w.admin.get('/admin/stats?range=7d&source=mobile')).statusCode, 400);
    const csv = await w.admin.get('/admin/stats?range=7d&source=web&format=csv&table=prompts_per_user');
    assert.match(csv.body, /Bob,1\r?\n/);

    const own = await w.user.get('/settings/usage?range=7d');
    assert.match(own.body, /<tr data-source="api"><th scope="row">API<\/th><td class="text-end">[1-9]/);
    assert.match(own.body, /<td[^>]*>API<\/td>/);
    const ownCsv = await w.user.get('/settings/usage?range=7d&format=csv');
    assert.match(ownCsv.body, /^day,model,prompts,answers,prompt_tokens,completion_tokens,source\r?\n/);
    assert.match(ownCsv.body, /,Fake echo,[1-9]\d*,[1-9]\d*,\d+,\d+,api\r?\n/);

    const bob = await w.t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txusername', '=', 'Bob').executeTakeFirstOrThrow();
    const page = await w.admin.get(`/admin/users/${bob.idappuser}`);
    assert.match(page.body, /<tr data-source="api"><td>Fake echo<\/td><td>API<\/td>/);
    assert.match(
      page.body,
      /data-testid="api-key-row"[\s\S]*?laptop[\s\S]*?<td data-label="Requests" class="text-end">[1-9]/,
      'the key with its request count',
    );
  });
});
