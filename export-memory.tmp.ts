// Ad-hoc: 10,000 chats (2 turns each, ~1 KB answers) for one user on PostgreSQL; GET /settings/export over a real socket;
// heap sampled while the body streams. Compare with the file's size.
import { sql } from 'kysely';
import { startFakeLlm } from '/work/wt/chat-transfer/src/llm/fake-llm-server.ts';
import { addModel } from '/work/wt/chat-transfer/test/chat-fixtures.ts';
import { TestClient } from '/work/wt/chat-transfer/test/client.ts';
import { startTestApp } from '/work/wt/chat-transfer/test/app.ts';

const llm = await startFakeLlm();
const t = await startTestApp();
const model = await addModel(t.database, llm.baseUrl);
const c = new TestClient(t.app);
await c.register({ email: 'big@example.com' });
const { idappuser } = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').executeTakeFirstOrThrow();
const chats = Number(process.env.CHATS ?? 10000);
await sql`INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle) SELECT ${idappuser}, ${model}, 'Chat ' || g FROM generate_series(1, ${chats}) g`.execute(t.database.db);
await sql`INSERT INTO chatbot_schema.message (idchat, txmessage) SELECT c.idchat, 'prompt ' || g || repeat(' words', 40) FROM chatbot_schema.chat c CROSS JOIN generate_series(1, 2) g`.execute(t.database.db);
await sql`INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, txstatus, tinf_start, tinf_end) SELECT m.idchat, m.idmessage, ${model}, repeat('answer text ', 90), 'x', 'complete', now(), now() FROM chatbot_schema.message m`.execute(t.database.db);
await t.app.listen({ port: 0, host: '127.0.0.1' });
const port = (t.app.server.address() as { port: number }).port;
global.gc?.();
const base = process.memoryUsage().heapUsed;
let peak = base;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().heapUsed); }, 5);
const started = performance.now();
const res = await fetch(`http://127.0.0.1:${port}/settings/export`, { headers: { cookie: c.cookieHeader() } });
let bytes = 0;
let firstChunkMs = 0;
for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { if (!bytes) firstChunkMs = performance.now() - started; bytes += chunk.length; }
clearInterval(timer);
console.log(JSON.stringify({ chats, fileMB: +(bytes / 1e6).toFixed(1), heapBaseMB: +(base / 1e6).toFixed(1), heapPeakDeltaMB: +((peak - base) / 1e6).toFixed(1), firstChunkMs: Math.round(firstChunkMs), totalMs: Math.round(performance.now() - started) }));
await t.close(); await llm.close();
