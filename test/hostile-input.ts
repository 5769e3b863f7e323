import fc from 'fast-check';

/**
 * Hostile request bodies for test/hostile-bodies.test.ts, as fast-check arbitraries. A body is an ordered list of
 * fields (so a repeated field, `a=1&a=2` or `{"a":1,"a":2}`, is as easy to make as any other), encoded as JSON, as a
 * form, as multipart, as text/plain, or sent with no content type at all. Values are what a broken or malicious
 * client sends: NUL, lone surrogates, invalid UTF-8 bytes (overlong, surrogate, beyond U+10FFFF, truncated), numbers
 * JSON.parse turns into Infinity or rounds, nesting that overflows a recursive walker, arrays and objects where text
 * belongs, lengths on either side of each field's limit. Whole bodies can also be random bytes or megabytes.
 */

/** Bytes spliced into the encoded body as they are: the one way to send what no encoder would produce. */
export class Raw {
  readonly json: Buffer;
  readonly form: Buffer;
  constructor(json: Buffer | string, form: Buffer | string = json) {
    this.json = Buffer.from(json as string);
    this.form = Buffer.from(form as string);
  }
}
export type Value = string | number | boolean | null | Raw | Value[] | { pairs: Pair[] };
export type Pair = [string, Value];
export type Encoding = 'json' | 'form' | 'form-unencoded' | 'multipart' | 'text-plain' | 'none-json' | 'none-form' | 'odd-type';

/** Byte sequences no UTF-8 decoder may accept. */
export const INVALID_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf], // overlong '/'
  [0xe0, 0x80, 0xaf], // overlong, 3 bytes
  [0xed, 0xa0, 0x80], // U+D800 encoded: a surrogate
  [0xed, 0xbf, 0xbf], // U+DFFF
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xe2, 0x82], // truncated €
  [0x80], // a lone continuation byte
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
].map((b) => Buffer.from(b));

/** What PostgreSQL cannot store (NUL) or the drivers would silently change (lone surrogates), and U+FFFD, which is how
 * a lenient decoder reports invalid bytes: each must be refused, never stored. */
const unstorable = ['\u0000', '\u0000', '\u0000', '\ud800', '\udfff', '\udc00\ud800', '\ud83d', '\ufffd'];
/** Odd but storable: must be stored exactly as sent or refused, not mangled. */
const odd = ['\ufeff', '\u202e', '\u200b', '\u0301', '\r\n', '\t', '\u0007', '\u001b[31m', '%00', '%', '&', '=', '+', '<b>', '"', '\\', '😀', '\u00a0'];
const plausible = [
  'admin@example.com',
  'user@example.com',
  'new@example.com',
  'correct horse battery staple',
  'A title',
  'Nina',
  'fake-echo',
  'on',
  '1',
  '123456',
  '/chat',
];

const withInserted = (base: fc.Arbitrary<string>, insert: fc.Arbitrary<string>) =>
  fc.tuple(base, insert, fc.nat()).map(([s, p, at]) => s.slice(0, at % (s.length + 1)) + p + s.slice(at % (s.length + 1)));

/** A string, then one invalid UTF-8 sequence in it: raw in JSON (inside the quotes) and in forms, percent-encoded too. */
const invalidUtf8Text = fc.tuple(fc.constantFrom(...plausible), fc.constantFrom(...INVALID_UTF8), fc.nat(), fc.boolean()).map(([s, bad, at, encoded]) => {
  const i = at % (s.length + 1);
  const [head, tail] = [Buffer.from(s.slice(0, i)), Buffer.from(s.slice(i))];
  const percent = Buffer.from([...bad].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join(''));
  return new Raw(Buffer.concat([Buffer.from('"'), head, bad, tail, Buffer.from('"')]), Buffer.concat([head, encoded ? percent : bad, tail]));
});

/** Numbers as JSON text: beyond double range (Infinity after JSON.parse), rounded, negative zero, not JSON at all. */
const numberLiteral = fc
  .constantFrom(
    '1e400',
    '-1e400',
    '1E-400',
    '-0',
    '123456789012345678901234567890',
    '9007199254740993',
    '2147483648',
    '-2147483649',
    '0.1e1',
    '1.0',
    '0x10',
    'NaN',
    'Infinity',
    '01',
    '1_000',
  )
  .map((n) => new Raw(n));
const numbers = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 2 ** 31, 2 ** 31 - 1, 2 ** 53 + 1, Number.MAX_VALUE, Number.MIN_VALUE));

/** Nesting deep enough to overflow a recursive walk, still inside the body limit (two bytes a level). */
const deep = fc
  .tuple(fc.constantFrom(100, 5_000, 60_000), fc.constantFrom('array', 'object'))
  .map(([depth, kind]) => (kind === 'array' ? new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`) : new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)));

export const LIMIT_UNITS = ['x', 'é', '€', '😀', ' ', '"', '\\', '\u0001', '\n', '\u2028', '<'];

/** Lengths on either side of the limits the schemas and columns have (names 50, titles 200, e-mail 254, prompts…). */
export function lengthEdges(maxPrompt: number): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom(49, 50, 51, 64, 65, 99, 100, 101, 128, 129, 199, 200, 201, 254, 255, 256, 1000, 1001, 2000, 2001, maxPrompt, maxPrompt + 1),
      // One code point each (limits count code points), of 1 to 4 bytes in UTF-8 and up to 6 as JSON (\u0001).
      fc.constantFrom(...LIMIT_UNITS),
    )
    .map(([n, unit]) => unit.repeat(n));
}

export function hostileValue(maxPrompt: number): fc.Arbitrary<Value> {
  const text = fc.oneof(
    { weight: 4, arbitrary: withInserted(fc.constantFrom(...plausible), fc.constantFrom(...odd)) },
    { weight: 2, arbitrary: fc.constantFrom(...plausible) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('a', ' ', '😀', '\ud83d', '\ude00', '<', '"', '\\', '\u0000', '\n'), maxLength: 20 }) },
    { weight: 2, arbitrary: lengthEdges(maxPrompt) },
  );
  const { value } = fc.letrec<{ value: Value }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 12, arbitrary: withInserted(fc.constantFrom(...plausible), fc.constantFrom(...unstorable)) },
      { weight: 4, arbitrary: invalidUtf8Text },
      { weight: 8, arbitrary: text },
      { weight: 1, arbitrary: numbers },
      { weight: 1, arbitrary: numberLiteral },
      { weight: 1, arbitrary: deep },
      { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
      { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.array(fc.tuple(fc.string({ maxLength: 8 }), tie('value')), { maxLength: 3 }).map((pairs) => ({ pairs })) },
    ),
  }));
  return value;
}

const FIELD_NAMES = [
  '_csrf',
  'content',
  'title',
  'llm',
  'username',
  'email',
  'password',
  'current',
  'next',
  'name',
  'baseUrl',
  'model',
  'apiKey',
  'enabled',
  'removeApiKey',
  'otp_code',
  'code',
  'action',
  'session',
  'ids',
  'back',
  'issuer',
  'subject',
  '__proto__',
  'constructor',
  'toString',
];
export const fieldName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FIELD_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });

const mutation = (value: fc.Arbitrary<Value>) =>
  fc.record({
    op: fc.oneof({ weight: 6, arbitrary: fc.constant('replace') }, { weight: 1, arbitrary: fc.constantFrom('replace-token', 'drop', 'add', 'repeat') }),
    at: fc.nat(),
    key: fieldName,
    value,
  });

/**
 * A body that worked, broken a little: mostly one field's value replaced (so one fault meets the handler alone),
 * sometimes the CSRF token replaced, a field dropped, one added, or one repeated with another value.
 */
export function mutatedPairs(starts: Pair[][], value: fc.Arbitrary<Value>): fc.Arbitrary<Pair[]> {
  const mutations = fc.oneof(
    { weight: 3, arbitrary: fc.array(mutation(value), { minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.array(mutation(value), { minLength: 2, maxLength: 3 }) },
  );
  return fc.record({ start: fc.constantFrom(...starts), mutations }).map(({ start, mutations }) => {
    const out: Pair[] = start.map(([k, v]) => [k, v]);
    for (const m of mutations) {
      const fields = out.map((_, i) => i).filter((i) => out[i]?.[0] !== '_csrf');
      const anyField = out.length > 0 ? m.at % out.length : -1;
      const aField = fields.length > 0 ? (fields[m.at % fields.length] as number) : -1;
      if (m.op === 'replace' && aField >= 0) (out[aField] as Pair)[1] = m.value;
      else if (m.op === 'replace-token') {
        for (const p of out) if (p[0] === '_csrf') p[1] = m.value;
      } else if (m.op === 'drop' && anyField >= 0) out.splice(anyField, 1);
      else if (m.op === 'repeat' && anyField >= 0) out.splice(anyField + 1, 0, [(out[anyField] as Pair)[0], m.value]);
      else out.push([m.key, m.value]);
    }
    return out;
  });
}

// ── encoders ──

function jsonBytes(v: Value): Buffer {
  if (v instanceof Raw) return v.json;
  if (Array.isArray(v))
    return Buffer.concat([Buffer.from('['), ...v.flatMap((x, i) => (i > 0 ? [Buffer.from(','), jsonBytes(x)] : [jsonBytes(x)])), Buffer.from(']')]);
  if (v !== null && typeof v === 'object') return jsonObject(v.pairs);
  // JSON.stringify escapes lone surrogates as \udXXX: they arrive as lone surrogates after JSON.parse.
  return Buffer.from(JSON.stringify(v) ?? 'null');
}
function jsonObject(pairs: Pair[]): Buffer {
  const parts = pairs.map(([k, v]) => Buffer.concat([Buffer.from(`${JSON.stringify(k)}:`), jsonBytes(v)]));
  return Buffer.concat([Buffer.from('{'), ...parts.flatMap((p, i) => (i > 0 ? [Buffer.from(','), p] : [p])), Buffer.from('}')]);
}

/** UTF-8 bytes as %XX (works for lone surrogates too: Buffer writes U+FFFD, encodeURIComponent would throw). */
export function percentEncode(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}
function formText(v: Value): Buffer {
  if (v instanceof Raw) return v.form;
  if (typeof v === 'string') return Buffer.from(v);
  return jsonBytes(v);
}
/** Percent-encoding as browsers do it (unreserved ASCII as it is), byte by byte, so invalid UTF-8 stays invalid. */
const UNRESERVED = /[A-Za-z0-9*._-]/;
function formBytes(pairs: Pair[], encoded: boolean): Buffer {
  const byte = (x: number) => (UNRESERVED.test(String.fromCharCode(x)) ? String.fromCharCode(x) : `%${x.toString(16).padStart(2, '0').toUpperCase()}`);
  const enc = (b: Buffer) => (encoded ? Buffer.from([...b].map(byte).join('')) : b);
  const parts = pairs.map(([k, v]) => {
    // A Raw value's form bytes are already what should go on the wire (percent signs included).
    const value = v instanceof Raw ? v.form : enc(formText(v));
    return Buffer.concat([enc(Buffer.from(k)), Buffer.from('='), value]);
  });
  return Buffer.concat(parts.flatMap((p, i) => (i > 0 ? [Buffer.from('&'), p] : [p])));
}
function multipartBytes(pairs: Pair[]): Buffer {
  const parts = pairs.map(([k, v]) =>
    Buffer.concat([Buffer.from(`--XyZ\r\nContent-Disposition: form-data; name="${k.replaceAll('"', '%22')}"\r\n\r\n`), formText(v), Buffer.from('\r\n')]),
  );
  return Buffer.concat([...parts, Buffer.from('--XyZ--\r\n')]);
}

const ODD_TYPES = [
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=iso-8859-1',
  'application/json;',
  'application/x-www-form-urlencoded; charset=UTF-8',
  'application/x-www-form-urlencoded; charset=utf-16',
  'multipart/form-data',
  'text/plain; charset=utf-8',
  'text/html',
  'application/xml',
  'application/octet-stream',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'application/json, application/x-www-form-urlencoded',
  '*/*',
  ';',
  'json',
  'x\u00ff/\u00e9',
];
export const oddType = fc.oneof(fc.constantFrom(...ODD_TYPES), headerText(40));

/** The wire form of `body` (an object as pairs, or any one value) in `encoding`. */
export function encodeBody(body: Pair[] | Value, encoding: Encoding, odd: string): { contentType?: string; payload: Buffer } {
  const pairs: Pair[] = Array.isArray(body) && body.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string') ? (body as Pair[]) : [];
  const isPairs = pairs.length > 0 || (Array.isArray(body) && body.length === 0);
  const json = () => (isPairs ? jsonObject(pairs) : jsonBytes(body as Value));
  const form = (encoded: boolean) => (isPairs ? formBytes(pairs, encoded) : formText(body as Value));
  switch (encoding) {
    case 'json':
      return { contentType: 'application/json', payload: json() };
    case 'form':
      return { contentType: 'application/x-www-form-urlencoded', payload: form(true) };
    case 'form-unencoded':
      return { contentType: 'application/x-www-form-urlencoded', payload: form(false) };
    case 'multipart':
      return { contentType: 'multipart/form-data; boundary=XyZ', payload: isPairs ? multipartBytes(pairs) : formText(body as Value) };
    case 'text-plain':
      return { contentType: 'text/plain', payload: form(true) };
    case 'none-json':
      return { payload: json() };
    case 'none-form':
      return { payload: form(true) };
    case 'odd-type':
      return { contentType: odd, payload: odd.includes('json') ? json() : form(true) };
  }
}

/**
 * What Node's HTTP parser lets through in a header value: tab, printable ASCII and obs-text (0x80–0xFF, read as
 * Latin-1). NUL, other controls and anything beyond Latin-1 never reach the app over a real socket (light-my-request
 * would pass them, so they are not generated: a failure must be one a client can cause).
 */
export function headerText(maxLength: number): fc.Arbitrary<string> {
  const char = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 1, arbitrary: fc.constantFrom(0x09, 0x3b, 0x3d, 0x2c, 0x22, 0x25, 0x20) },
  );
  return fc.array(char, { maxLength }).map((codes) => String.fromCharCode(...codes));
}

/** A body of `size` bytes: a field padded to it (so the limit, not the schema, decides), or random bytes. */
export function sized(size: number, field: string, unit: string, random: boolean, json: boolean): Buffer {
  if (random) {
    const chunk = Buffer.from([...Array(4096)].map((_, i) => (i * 7919 + size) % 256));
    return Buffer.concat(Array(Math.ceil(size / chunk.length)).fill(chunk)).subarray(0, size);
  }
  const head = json ? `{"${field}":"` : `${field}=`;
  const tail = json ? '"}' : '';
  const room = Math.max(0, size - head.length - tail.length);
  const unitBytes = Buffer.byteLength(unit);
  const fill = unit.repeat(Math.floor(room / unitBytes)) + 'x'.repeat(room % unitBytes);
  return Buffer.from(head + fill + tail);
}

/**
 * Text a user might really type, and the edges of it: any graphemes, whitespace of every kind around it (the
 * schemas trim), combining marks, emoji, markup characters, the unstorable ones now and then, and lengths on either
 * side of the limits. For the round-trip tests: what is accepted must come back exactly.
 */
export function typedText(maxPrompt: number): fc.Arbitrary<string> {
  const space = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r', '\u00a0', '\u3000', '\ufeff', '\u2028', '\u200b', '\u180e'), maxLength: 3 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }) },
    { weight: 2, arbitrary: fc.tuple(space, fc.string({ unit: 'grapheme', maxLength: 20 }), space).map(([a, b, c]) => a + b + c) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }) },
    {
      weight: 2,
      arbitrary: fc.string({
        unit: fc.constantFrom('a', 'Z', ' ', '😀', '👩‍👩‍👧', 'é', 'e\u0301', '<', '&', '"', "'", '`', '\\', '\u202e', '%', '+'),
        minLength: 1,
        maxLength: 30,
      }),
    },
    { weight: 1, arbitrary: withInserted(fc.constantFrom(...plausible), fc.constantFrom(...unstorable)) },
    { weight: 1, arbitrary: lengthEdges(maxPrompt) },
  );
}
