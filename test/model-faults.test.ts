import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addModel, type ChatWorld, newChat, parseSse, startChatWorld, tokensText } from './chat-fixtures.ts';
import { TestClient } from './client.ts';

// A model server that misbehaves in ways the fake one's directives ([[fail]] [[stall]] [[malformed]] [[drop]],
// src/chat/chat-api.test.ts) do not reach: here each is a raw TCP server writing exactly the bytes of the fault. In
// every case the answer must end as `error` with the text that arrived before the fault, and the app stay healthy.

/**
 * LLM_TIMEOUT_S here: a hang ends this long after the last byte. "Not held up" is measured against it: a request
 * that waited for the slow server would take this long, one that did not takes a fraction of it even on a loaded
 * 2-core machine running every case of this file at once.
 */
const IDLE_TIMEOUT_S = 5;

let w: ChatWorld;
before(async () => {
  w = await startChatWorld({ LLM_TIMEOUT_S: String(IDLE_TIMEOUT_S), MAX_CONCURRENT_GENERATIONS: '20' });
});
after(() => w.close());

const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'raw', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const SSE_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n';
const TWO_TOKENS = chunk('Partial ') + chunk('answer ');

/** A TCP server that reads one HTTP request (headers and Content-Length body) and hands the socket to `misbehave`. */
async function rawModelServer(misbehave: (socket: Socket) => void): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d) => {
      received += d.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(received.slice(0, end))?.[1] ?? 0);
      if (received.length - end - 4 < length) return;
      socket.removeAllListeners('data');
      misbehave(socket);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { url: `http://127.0.0.1:${address.port}/v1`, server, sockets };
}

const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
after(async () => {
  for (const s of servers) {
    for (const socket of s.sockets) socket.destroy();
    s.server.close();
  }
});

/** Asks a model at `url`, then checks the outcome: `error` with the message, the streamed text stored as the answer. */
async function askFaulty(label: string, url: string, message: RegExp, partial: string): Promise<number> {
  const modelId = await addModel(w.t.database, url, label);
  const chatId = await newChat(w.user, modelId);
  const startedAt = Date.now();
  const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'hello' });
  const tookMs = Date.now() - startedAt;
  assert.equal(res.statusCode, 200, res.body);
  const events = parseSse(res.body);
  const last = events.at(-1);
  assert.equal(last?.event, 'error', `${label}: ${res.body.slice(-300)}`);
  assert.match(String(last?.data.message), message);
  const row = await w.t.database.db
    .selectFrom('chatbot_schema.response')
    .select(['txstatus', 'txmarkdown', 'txerror', 'tinf_end'])
    .where('idresponse', '=', Number(last?.data.idresponse))
    .executeTakeFirstOrThrow();
  assert.equal(row.txstatus, 'error');
  assert.match(row.txerror ?? '', message);
  assert.equal(tokensText(events), partial, 'what was streamed');
  assert.equal(row.txmarkdown, partial, 'what was stored: the text before the fault');
  assert.ok(row.tinf_end);
  await assertHealthy();
  return tookMs;
}

/** The app is healthy: ready, and the next prompt to a working model is answered completely. */
async function assertHealthy(): Promise<void> {
  assert.equal((await w.user.get('/readyz')).statusCode, 200);
  const chatId = await newChat(w.user, w.modelId);
  const events = parseSse((await w.user.postJson(`/api/chats/${chatId}/messages`, { content: 'still there?' })).body);
  assert.equal(events.at(-1)?.event, 'done');
  assert.equal(events.at(-1)?.data.status, 'complete');
}

const fault = async (misbehave: (socket: Socket) => void) => {
  const s = await rawModelServer(misbehave);
  servers.push(s);
  return s.url;
};

// The cases are independent (a server each, chats of their own): they run at once, so the hangs overlap.
describe('model server faults', { concurrency: true }, () => {
  describe('the model server dies mid-stream', { concurrency: true }, () => {
    test('the connection is reset (RST) after two tokens', async () => {
      const url = await fault((socket) => socket.write(SSE_HEAD + TWO_TOKENS, () => setTimeout(() => socket.resetAndDestroy(), 50)));
      await askFaulty('reset', url, /ended the answer before it was complete|broken answer/, 'Partial answer ');
    });

    test('the connection is closed (FIN) after two tokens, without finish_reason or [DONE]', async () => {
      const url = await fault((socket) => socket.end(SSE_HEAD + TWO_TOKENS));
      await askFaulty('closed', url, /ended the answer before it was complete|broken answer/, 'Partial answer ');
    });

    test('a chunked body is cut inside a chunk', async () => {
      const body = TWO_TOKENS;
      const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n';
      const url = await fault((socket) => socket.end(`${head}${body.length.toString(16)}\r\n${body}\r\n400\r\ndata: {"choi`));
      await askFaulty('cut chunk', url, /broken answer/, 'Partial answer ');
    });
  });

  describe('the model server hangs', { concurrency: true }, () => {
    const withinTimeout = (ms: number) => assert.ok(ms >= IDLE_TIMEOUT_S * 1000 - 100 && ms < IDLE_TIMEOUT_S * 1000 + 5_000, `ended after ${ms} ms`);

    test('it accepts the connection and reads the request, then sends nothing: error after LLM_TIMEOUT_S', async () => {
      const url = await fault(() => {});
      withinTimeout(await askFaulty('silent', url, /did not answer within 5 s/, ''));
    });

    test('it sends the headers, then nothing', async () => {
      const url = await fault((socket) => socket.write(SSE_HEAD));
      withinTimeout(await askFaulty('headers only', url, /did not answer within 5 s/, ''));
    });

    test('it stops after two tokens and keeps the connection open', async () => {
      const url = await fault((socket) => socket.write(SSE_HEAD + TWO_TOKENS));
      withinTimeout(await askFaulty('stalled', url, /did not answer within 5 s/, 'Partial answer '));
    });
  });

  describe('the model server answers garbage', { concurrency: true }, () => {
    test('bytes that are not HTTP at all', async () => {
      const url = await fault((socket) => socket.end(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0xff, 0x00, 0x0d, 0x0a])));
      await askFaulty('not HTTP', url, /Could not reach|broken answer/, '');
    });

    test('an event stream of random bytes', async () => {
      const url = await fault((socket) =>
        socket.end(Buffer.concat([Buffer.from(SSE_HEAD), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))])),
      );
      await askFaulty('random bytes', url, /ended the answer before it was complete|broken answer/, '');
    });

    test('two tokens, then a data line of broken JSON', async () => {
      const url = await fault((socket) => socket.end(`${SSE_HEAD}${TWO_TOKENS}data: {"choices": [{"delta": {"content": "x"\n\n`));
      await askFaulty('broken JSON', url, /broken answer/, 'Partial answer ');
    });

    test('two tokens, then JSON of the wrong shape (content not a string, no choices) and [DONE]', async () => {
      const odd = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 42 } }] })}\n\ndata: {"unexpected": true}\n\ndata: [DONE]\n\n`;
      const url = await fault((socket) => socket.end(SSE_HEAD + TWO_TOKENS + odd));
      await askFaulty('wrong shape', url, /broken answer|ended the answer before it was complete/, 'Partial answer ');
    });

    test('a whole (non-streamed) JSON completion, as application/json', async () => {
      const json = JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
      });
      const url = await fault((socket) =>
        socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\nconnection: close\r\n\r\n${json}`),
      );
      await askFaulty('JSON, not a stream', url, /ended the answer before it was complete|broken answer/, '');
    });

    test("a proxy's HTML page with 200", async () => {
      const page = '<!doctype html><html><body><h1>Sign in to the corporate proxy</h1></body></html>';
      const url = await fault((socket) =>
        socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: ${page.length}\r\nconnection: close\r\n\r\n${page}`),
      );
      await askFaulty('HTML page', url, /ended the answer before it was complete|broken answer/, '');
    });

    test("HTTP 500 and a gateway's 502 with an HTML body", async () => {
      for (const status of [500, 502]) {
        const page = `<html><body>${status} oops</body></html>`;
        const url = await fault((socket) =>
          socket.end(`HTTP/1.1 ${status} Oops\r\ncontent-type: text/html\r\ncontent-length: ${page.length}\r\nconnection: close\r\n\r\n${page}`),
        );
        await askFaulty(`HTTP ${status}`, url, new RegExp(`had a problem \\(HTTP ${status}\\)`), '');
      }
    });
  });

  describe('a model server slow to accept connections', () => {
    let child: ChildProcess;
    const filler: Socket[] = [];
    after(() => {
      for (const s of filler) s.destroy();
      child?.kill('SIGKILL');
    });

    test("does not hold up other users' pages and answers; its own answers end as errors after LLM_TIMEOUT_S", async () => {
      // A process that listens with a backlog of 1 and then blocks its event loop: it never accepts. Once its accept
      // queue is full (two connections on Linux), the kernel drops further SYNs, so a client's connect just waits.
      child = spawn(
        process.execPath,
        [
          '-e',
          `const s = require('node:net').createServer();
         s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           process.stdout.write(s.address().port + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const [portLine] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
      const port = Number(portLine.toString().trim());
      for (let connected = true; connected; ) {
        assert.ok(filler.length < 16, 'the accept queue never filled up');
        const socket = connect(port, '127.0.0.1').on('error', () => {});
        filler.push(socket);
        connected = await Promise.race([once(socket, 'connect').then(() => true), sleep(300).then(() => false)]);
      }

      const slowModel = await addModel(w.t.database, `http://127.0.0.1:${port}/v1`, 'Slow to accept');
      const slowUsers = await Promise.all(
        ['Cleo', 'Dan', 'Eve'].map(async (name) => {
          const c = new TestClient(w.t.app);
          await c.register({ username: name, email: `${name.toLowerCase()}@example.com` });
          await c.get('/chat');
          return { c, chatId: await newChat(c, slowModel) };
        }),
      );
      // Three users' answers wait on the slow server at once ...
      let slowEnded = 0;
      const slowStartedAt = Date.now();
      const slow = slowUsers.map(({ c, chatId }) =>
        c.postJson(`/api/chats/${chatId}/messages`, { content: 'anyone there?' }).then((res) => {
          slowEnded++;
          return { res, ms: Date.now() - slowStartedAt };
        }),
      );
      // ... while another user's pages and an answer from another model go on as usual.
      const pageMs: number[] = [];
      const otherChat = await newChat(w.user, w.modelId);
      const otherStartedAt = Date.now();
      const answer = w.user.postJson(`/api/chats/${otherChat}/messages`, { content: 'meanwhile' }).then((res) => ({ res, ms: Date.now() - otherStartedAt }));
      while (Date.now() - slowStartedAt < (IDLE_TIMEOUT_S * 1000) / 2) {
        for (const url of ['/chat', `/chat/${otherChat}`, `/api/chats/${otherChat}`, '/settings']) {
          const startedAt = Date.now();
          const res = await w.user.get(url);
          pageMs.push(Date.now() - startedAt);
          assert.equal(res.statusCode, 200, url);
          await sleep(50); // a user clicking, not a load test: the other cases of this file run meanwhile
        }
      }
      const { res: otherRes, ms: otherMs } = await answer;
      const otherAnswer = parseSse(otherRes.body);
      assert.equal(slowEnded, 0, 'the slow answers were still waiting while the other user was served');
      assert.equal(otherAnswer.at(-1)?.data.status, 'complete');
      const slowestPage = Math.max(...pageMs);
      assert.ok(slowestPage < (IDLE_TIMEOUT_S * 1000) / 2, `slowest page ${slowestPage} ms`);

      for (const { res, ms } of await Promise.all(slow)) {
        const last = parseSse(res.body).at(-1);
        assert.equal(last?.event, 'error');
        assert.match(String(last?.data.message), /did not answer within 5 s/);
        assert.ok(ms >= IDLE_TIMEOUT_S * 1000 - 100 && ms < IDLE_TIMEOUT_S * 1000 + 5_000, `a slow answer ended after ${ms} ms`);
      }
      console.log(`# slow to accept: ${pageMs.length} pages meanwhile, slowest ${slowestPage} ms; the other model's answer complete in ${otherMs} ms`);
      await assertHealthy();
    });
  });
});
