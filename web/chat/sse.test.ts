import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readEventStream, type SseEvent, SseParser } from './sse.ts';

function parseChunks(chunks: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return events;
}

const pick = (events: SseEvent[]) => events.map(({ event, data }) => ({ event, data }));

/** What the chat API sends (src/chat/event-stream.ts): `event:` and one `data:` line of JSON, then a blank line. */
const STREAM = [
  'event: start\ndata: {"idmessage":1,"idresponse":7}\n\n',
  'event: token\ndata: {"text":"Hel"}\n\n',
  'event: token\ndata: {"text":"lo\\n\\nwörld 🌍"}\n\n',
  'event: done\ndata: {"idmessage":1,"idresponse":7,"status":"complete","html":"<p>Hello</p>"}\n\n',
].join('');

const EXPECTED = [
  { event: 'start', data: '{"idmessage":1,"idresponse":7}' },
  { event: 'token', data: '{"text":"Hel"}' },
  { event: 'token', data: '{"text":"lo\\n\\nwörld 🌍"}' },
  { event: 'done', data: '{"idmessage":1,"idresponse":7,"status":"complete","html":"<p>Hello</p>"}' },
];

describe('SseParser', () => {
  test('reads the events of a whole stream', () => {
    assert.deepEqual(pick(parseChunks([STREAM])), EXPECTED);
  });

  test('gives the same events wherever the stream is cut into two chunks', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      assert.deepEqual(pick(parseChunks([STREAM.slice(0, cut), STREAM.slice(cut)])), EXPECTED, `cut at ${cut}`);
    }
  });

  test('gives the same events when fed one character at a time', () => {
    assert.deepEqual(pick(parseChunks([...STREAM])), EXPECTED);
  });

  test('accepts CRLF and CR line endings, even a CRLF split between chunks', () => {
    const crlf = STREAM.replaceAll('\n\n', '\r\n\r\n').replaceAll('\ndata', '\r\ndata');
    assert.deepEqual(pick(parseChunks([crlf])), EXPECTED);
    for (let cut = 0; cut <= crlf.length; cut++) assert.deepEqual(pick(parseChunks([crlf.slice(0, cut), crlf.slice(cut)])), EXPECTED, `cut at ${cut}`);
    assert.deepEqual(pick(parseChunks([STREAM.replaceAll('\n', '\r')])), EXPECTED);
  });

  test('joins several data lines with newlines', () => {
    assert.deepEqual(pick(parseChunks(['data: one\ndata:two\ndata\ndata:  four\n\n'])), [{ event: 'message', data: 'one\ntwo\n\n four' }]);
  });

  test('ignores comments and unknown fields; the event type does not leak into the next event', () => {
    const events = parseChunks([': keep-alive\n\nevent: token\nretry: 10\nfoo: bar\ndata: a\n\ndata: b\n\n']);
    assert.deepEqual(pick(events), [
      { event: 'token', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
  });

  test('dispatches nothing for an event without data', () => {
    assert.deepEqual(parseChunks(['event: token\n\n\n\n']), []);
  });

  test('discards an event the stream ended before completing', () => {
    assert.deepEqual(pick(parseChunks(['event: token\ndata: {"text":"a"}\n\nevent: done\ndata: {}'])), [{ event: 'token', data: '{"text":"a"}' }]);
  });

  test('remembers the last event id', () => {
    assert.deepEqual(
      parseChunks(['id: 1\ndata: a\n\ndata: b\n\n']).map((e) => e.id),
      ['1', '1'],
    );
  });
});

describe('readEventStream', () => {
  test('decodes UTF-8 characters whose bytes arrive in different chunks', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const emoji = new TextEncoder().encode('🌍');
    const at = bytes.findIndex((_, i) => emoji.every((b, j) => bytes[i + j] === b));
    assert.ok(at > 0);
    const chunks = [bytes.slice(0, at + 1), bytes.slice(at + 1, at + 3), bytes.slice(at + 3)];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    const events: SseEvent[] = [];
    await readEventStream(body, (e) => events.push(e));
    assert.deepEqual(pick(events), EXPECTED);
  });

  test('rejects when the connection breaks', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('event: token\ndata: {"text":"a"}\n\n'));
        controller.error(new TypeError('network error'));
      },
    });
    const events: SseEvent[] = [];
    await assert.rejects(
      readEventStream(body, (e) => events.push(e)),
      /network error/,
    );
  });
});
