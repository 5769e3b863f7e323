import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderMarkdown } from './markdown.ts';

/** Each of these, from a model or a user, must come out without anything a browser would execute or fetch. */
const XSS_CORPUS = [
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  '<svg><script>alert(1)</script></svg>',
  '<svg onload=alert(1)>',
  '<iframe src="https://evil.example/"></iframe>',
  '<a href="javascript:alert(1)">x</a>',
  '<style>body{display:none}</style>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '[x](javascript:alert(1))',
  '[x](JAVASCRIPT:alert(1))',
  '[x](  javascript:alert(1))',
  '[x](java&#115;cript:alert(1))',
  '[x](&#106;avascript:alert(1))',
  '[x](java\\tscript:alert(1))',
  '[x](vbscript:msgbox(1))',
  '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[x](file:///etc/passwd)',
  '[x](//evil.example/)',
  '[x]: javascript:alert(1)\n\n[x]',
  '![x](javascript:alert(1))',
  '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
  '<javascript:alert(1)>',
  '<data:text/html,<script>alert(1)</script>>',
  '[x](https://ok.example/ "title\\" onmouseover=\\"alert(1)")',
  '```\n<img src=x onerror=alert(1)>\n```',
  '```html" onmouseover="alert(1)\n<b>x</b>\n```',
  '```javascript\nconst a = "<script>alert(1)</script>";\n```',
  '`<img src=x onerror=alert(1)>`',
  '| a |\n|---|\n| <img src=x onerror=alert(1)> |',
  '> <iframe srcdoc="<script>alert(1)</script>">',
  '<details open ontoggle=alert(1)>',
  '<form action="javascript:alert(1)"><button>x</button></form>',
  '<object data="javascript:alert(1)"></object>',
  '<base href="https://evil.example/">',
  '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
];

const FORBIDDEN_TAGS = /^(script|style|iframe|frame|svg|math|img|object|embed|form|base|meta|details|link|input|button|textarea)$/i;

function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);?/gi, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);?/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&(quot|amp|lt|gt|apos);/g, (_, name: string) => ({ quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" })[name] ?? '');
}

/**
 * Reads the output the way a browser would: every literal `<` must open a real tag (text has them escaped), and
 * each tag's attributes are checked by name and, for URLs, by their decoded value.
 */
function assertInert(output: string, input: string): void {
  const why = `input ${JSON.stringify(input)} gave ${JSON.stringify(output)}`;
  const tagRe = /<\/?([a-zA-Z][\w-]*)((?:\s+[^\s"'=<>/]+(?:="[^"]*")?)*)\s*\/?>/g;
  const tags = [...output.matchAll(tagRe)];
  assert.equal(tags.length, (output.match(/</g) ?? []).length, `a "<" that is not a well-formed tag: ${why}`);
  for (const [, name = '', attributes = ''] of tags) {
    assert.doesNotMatch(name, FORBIDDEN_TAGS, why);
    for (const [, attr = '', quoted] of attributes.matchAll(/\s([^\s"'=<>/]+)(?:="([^"]*)")?/g)) {
      assert.doesNotMatch(attr, /^(on|style$|src$|srcdoc$|action$|formaction$|data$)/i, why);
      if (attr.toLowerCase() === 'href') assert.match(decodeEntities(quoted ?? '').trim(), /^(https?:\/\/|mailto:)/i, why);
    }
  }
}

describe('renderMarkdown: nothing executable gets through', () => {
  for (const input of XSS_CORPUS) {
    test(JSON.stringify(input), () => assertInert(renderMarkdown(input), input));
  }

  test('the assertions catch what they must (they can fail)', () => {
    assert.throws(() => assertInert('<img src=x>', 'probe'));
    assert.throws(() => assertInert('<a href="javascript:alert(1)">x</a>', 'probe'));
    assert.throws(() => assertInert('<a href="java&#115;cript:alert(1)">x</a>', 'probe'));
    assert.throws(() => assertInert('<a href="//evil.example/">x</a>', 'probe'));
    assert.throws(() => assertInert('<p><b onclick="x()">x</b></p>', 'probe'));
    assert.throws(() => assertInert('<p x=<img onerror=y>>', 'probe'));
    assert.doesNotThrow(() => assertInert('<p title="a &quot;onclick=x()">&lt;img onerror=x&gt;</p>', 'probe'));
  });

  test('raw HTML stays visible as text rather than disappearing', () => {
    assert.match(renderMarkdown('<img src=x onerror=alert(1)>'), /&lt;img src=x onerror=alert\(1\)&gt;/);
  });

  test('markup inside a code fence is escaped text', () => {
    for (const fence of ['```', '```text', '```html']) {
      const out = renderMarkdown(`${fence}\n<img src=x onerror=alert(1)>\n\`\`\``);
      assert.match(out, /^<pre><code class="hljs[^"]*">/);
      assert.equal(out.replace(/<[^>]+>/g, ''), '&lt;img src=x onerror=alert(1)&gt;\n\n', fence); // highlighting spans aside, the same text
    }
  });

  test('a refused link is left as text, not as an anchor', () => {
    const out = renderMarkdown('[x](javascript:alert(1))');
    assert.doesNotMatch(out, /<a\b/);
    assert.match(out, /\[x\]\(javascript:alert\(1\)\)/);
  });

  test('images never become <img>; a safe image URL becomes a link', () => {
    const out = renderMarkdown('![a cat](https://img.example/cat.png)');
    assert.doesNotMatch(out, /<img/);
    assert.match(out, /<a href="https:\/\/img\.example\/cat\.png" rel="noopener noreferrer nofollow" target="_blank">🖼 a cat<\/a>/);
  });
});

describe('renderMarkdown: ordinary markdown renders', () => {
  test('headings, emphasis, lists and quotes', () => {
    const out = renderMarkdown('# Title\n\n## Sub\n\nSome **bold**, *em* and ~~gone~~.\n\n- one\n- two\n\n3. three\n4. four\n\n> quoted');
    assert.match(out, /<h1>Title<\/h1>/);
    assert.match(out, /<h2>Sub<\/h2>/);
    assert.match(out, /<strong>bold<\/strong>, <em>em<\/em> and <s>gone<\/s>/);
    assert.match(out, /<ul>\s*<li>one<\/li>\s*<li>two<\/li>\s*<\/ul>/);
    assert.match(out, /<ol start="3">/);
    assert.match(out, /<blockquote>\s*<p>quoted<\/p>\s*<\/blockquote>/);
  });

  test('single newlines are line breaks', () => {
    assert.match(renderMarkdown('line one\nline two'), /line one<br \/>\s*line two|line one<br>\s*line two/);
  });

  test('tables, with column alignment as classes instead of inline style', () => {
    const out = renderMarkdown('| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |');
    assert.match(out, /<table>\s*<thead>\s*<tr>\s*<th class="text-start">a<\/th>\s*<th class="text-center">b<\/th>\s*<th class="text-end">c<\/th>/);
    assert.match(out, /<td class="text-end">3<\/td>/);
  });

  test('fenced code with a known language is highlighted with hljs spans', () => {
    const out = renderMarkdown('```typescript\nfunction add(a: number): number { return a + 1; }\n```');
    assert.match(out, /<pre><code class="hljs language-typescript">/);
    assert.match(out, /<span class="hljs-keyword">function<\/span>/);
    assert.match(out, /<span class="hljs-title function_">add<\/span>/);
  });

  test('fenced code without a language is auto-detected when it clearly is code, left plain when it is prose', () => {
    assert.match(renderMarkdown('```\nSELECT name FROM users WHERE id = 1;\n```'), /<span class="hljs-keyword">SELECT<\/span>/);
    assert.equal(
      renderMarkdown('```\nDear team, the meeting moved to Tuesday.\n```'),
      '<pre><code class="hljs">Dear team, the meeting moved to Tuesday.\n</code></pre>\n',
    );
  });

  test('an unknown language is escaped plain code', () => {
    const out = renderMarkdown('```nosuchlang\na < b && c\n```');
    assert.match(out, /<pre><code class="hljs language-nosuchlang">a &lt; b &amp;&amp; c\n<\/code><\/pre>/);
  });

  test('inline code', () => {
    assert.match(renderMarkdown('use `npm <start>` now'), /<code>npm &lt;start&gt;<\/code>/);
  });

  test('links and bare URLs open in a new tab without referrer or opener', () => {
    const out = renderMarkdown('[docs](https://example.com/a?b=1&c=2 "The docs") and https://example.org/x. and mail a@example.com');
    assert.match(out, /<a href="https:\/\/example\.com\/a\?b=1&amp;c=2" title="The docs" rel="noopener noreferrer nofollow" target="_blank">docs<\/a>/);
    assert.match(out, /<a href="https:\/\/example\.org\/x" rel="noopener noreferrer nofollow" target="_blank">https:\/\/example\.org\/x<\/a>\. and/);
    assert.match(out, /<a href="mailto:a@example\.com" rel="noopener noreferrer nofollow" target="_blank">a@example\.com<\/a>/);
  });

  test('an empty answer renders to nothing', () => {
    assert.equal(renderMarkdown(''), '');
  });
});
