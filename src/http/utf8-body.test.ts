import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import Fastify from 'fastify';
import { sendLargeStringsAsUtf8, utf8Bytes } from './utf8-body.ts';

test('utf8Bytes gives exactly the bytes of Buffer.from: any string, lone surrogates included', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 50 }), (a, b) => {
      for (const text of [a, b, a + b, `${a}\ud800${b}`, `\udc00${b}`]) assert.deepEqual(utf8Bytes(text), Buffer.from(text));
    }),
    { numRuns: 500 },
  );
});

test('a large page with characters beyond Latin-1 arrives intact with the right Content-Length; small and Latin-1 ones too', async () => {
  const app = Fastify();
  sendLargeStringsAsUtf8(app);
  const big = `${'<p>Café “quoted” … 🧠 日本語</p>'.repeat(400)}\ud800`;
  const bodies: Record<string, string> = { '/big': big, '/latin1': 'é'.repeat(10_000), '/small': '“small” 🧠' };
  for (const [url, body] of Object.entries(bodies)) app.get(url, async (_req, reply) => reply.type('text/html; charset=utf-8').send(body));
  for (const [url, body] of Object.entries(bodies)) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 200);
    assert.equal(res.rawPayload.equals(Buffer.from(body)), true, url);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(body), url);
    assert.match(String(res.headers['content-type']), /text\/html/);
  }
  await app.close();
});
