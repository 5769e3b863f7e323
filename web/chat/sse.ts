/**
 * An incremental parser for `text/event-stream` (the HTML Living Standard, "server-sent events", §9.2.6), for
 * reading a POST response with fetch — EventSource can only GET. Chunks may split lines (even a CRLF pair) and
 * events anywhere; an event is dispatched at the blank line that ends it, its data lines joined with "\n".
 */
export interface SseEvent {
  /** The `event:` field, "message" when the event has none. */
  event: string;
  data: string;
  id: string;
}

export class SseParser {
  private buffer = '';
  private eventType = '';
  private dataLines: string[] = [];
  private lastEventId = '';
  private readonly onEvent: (event: SseEvent) => void;

  constructor(onEvent: (event: SseEvent) => void) {
    this.onEvent = onEvent;
  }

  push(chunk: string): void {
    this.buffer += chunk;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for the next chunk.
      if (c === '\r' && i === this.buffer.length - 1) break;
      this.processLine(this.buffer.slice(start, i));
      if (c === '\r' && this.buffer[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** End of stream: a trailing CR ends its line; an event without its blank line is discarded, as the standard says. */
  end(): void {
    if (this.buffer.endsWith('\r')) this.processLine(this.buffer.slice(0, -1));
    this.buffer = '';
    this.eventType = '';
    this.dataLines = [];
  }

  private processLine(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return; // a comment, e.g. a keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') this.dataLines.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    // `retry` and unknown fields are ignored: we never reconnect on our own.
  }

  private dispatch(): void {
    const hasData = this.dataLines.length > 0;
    const event = { event: this.eventType || 'message', data: this.dataLines.join('\n'), id: this.lastEventId };
    this.eventType = '';
    this.dataLines = [];
    if (hasData) this.onEvent(event);
  }
}

/** Reads a whole event stream; resolves when the server ends it, rejects if the connection breaks. */
export async function readEventStream(body: ReadableStream<Uint8Array>, onEvent: (event: SseEvent) => void): Promise<void> {
  const parser = new SseParser(onEvent);
  // The cast: TypeScript's DOM types disagree with Node's on TextDecoderStream's input type; both accept Uint8Array.
  const reader = body.pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.push(value);
  }
  parser.end();
}
