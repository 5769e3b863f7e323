import hljs from 'highlight.js';
import MarkdownIt, { type MarkdownIt as MarkdownRenderer } from 'markdown-it';
import sanitizeHtml from 'sanitize-html';

/**
 * Markdown from a model (or a user) → HTML that is safe to put in a page. Two layers: markdown-it never
 * passes raw HTML through and refuses links outside http/https/mailto, then sanitize-html keeps only the tags,
 * attributes and classes markdown-it and highlight.js legitimately produce — so a bug or an unexpected
 * construct in the first layer still cannot produce script, event handlers or foreign URLs.
 */

const SAFE_LINK_RE = /^(https?:|mailto:)/i;

/** Auto-detection tries every candidate grammar on the whole block, so it is limited to common languages and to small blocks. */
const AUTO_DETECT_LANGUAGES = ['bash', 'c', 'cpp', 'csharp', 'css', 'go', 'java', 'javascript', 'json', 'python', 'rust', 'sql', 'typescript', 'xml', 'yaml'];
const AUTO_DETECT_MAX_CHARS = 20_000;
/** highlight.js scores plain English prose 1–2 and short real snippets (`SELECT * FROM t;`, a Python def) 3 or more. */
const AUTO_DETECT_MIN_RELEVANCE = 3;
const TABLE_ALIGN_CLASSES: Record<string, string> = { left: 'text-start', center: 'text-center', right: 'text-end' };

function highlightCode(code: string, lang: string): string {
  if (lang && hljs.getLanguage(lang)) return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  if (!lang && code.length <= AUTO_DETECT_MAX_CHARS) {
    const result = hljs.highlightAuto(code, AUTO_DETECT_LANGUAGES);
    // A low relevance means "looks like prose": colouring it at random helps nobody.
    if (result.relevance >= AUTO_DETECT_MIN_RELEVANCE) return result.value;
  }
  return ''; // markdown-it escapes the code itself
}

function createRenderer(): MarkdownRenderer {
  // breaks: models write single newlines meaning "new line" (addresses, poems, step lists), as in GitHub comments.
  const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false, highlight: highlightCode });
  md.validateLink = (url) => SAFE_LINK_RE.test(url.trim());

  const renderFence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, options, env, self) => {
    tokens[idx]!.attrJoin('class', 'hljs'); // the highlight theme keys its colours on code.hljs
    return renderFence(tokens, idx, options, env, self);
  };

  // No images: an <img> makes the browser fetch a URL the model chose as soon as the answer shows, which lets a
  // prompt-injected answer leak the conversation in the query string. The image becomes a link the user may follow.
  md.renderer.rules.image = (tokens, idx, _options, env, self) => {
    const token = tokens[idx]!;
    const alt = self.renderInlineAsText(token.children ?? [], md.options, env) || 'image';
    return `<a href="${md.utils.escapeHtml(String(token.attrGet('src') ?? ''))}">🖼 ${md.utils.escapeHtml(alt)}</a>`;
  };

  // markdown-it aligns table columns with style="text-align:…", which our CSP (style-src 'self') would block: use classes.
  md.core.ruler.push('table_align_classes', (state) => {
    for (const token of state.tokens) {
      if (token.type !== 'th_open' && token.type !== 'td_open') continue;
      const align = /^text-align:(\w+)$/.exec(String(token.attrGet('style') ?? ''))?.[1];
      if (!align) continue;
      token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
      const alignClass = TABLE_ALIGN_CLASSES[align];
      if (alignClass) token.attrJoin('class', alignClass);
    }
  });
  return md;
}

const markdown = createRenderer();
const alignClasses = Object.values(TABLE_ALIGN_CLASSES);

const SANITIZE_OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: [
    ...['p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'ul', 'ol', 'li'],
    ...['strong', 'em', 's', 'del', 'code', 'pre', 'span', 'a'],
    ...['table', 'thead', 'tbody', 'tr', 'th', 'td'],
  ],
  allowedAttributes: { a: ['href', 'title', 'rel', 'target'], ol: ['start'], code: ['class'], span: ['class'], th: ['class'], td: ['class'] },
  // highlight.js marks sub-scopes with a trailing underscore (`hljs-title function_`); nothing else may style answers.
  allowedClasses: { code: ['hljs', 'language-*'], span: ['hljs-*', '*_'], th: alignClasses, td: alignClasses },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesAppliedToAttributes: ['href'],
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  transformTags: {
    // target=_blank keeps the chat open; noopener/noreferrer hide it from the opened page; nofollow because models invent links.
    a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer nofollow', target: '_blank' }),
  },
};

export function renderMarkdown(source: string): string {
  return sanitizeHtml(markdown.render(source), SANITIZE_OPTIONS);
}

/**
 * Our HTML for an answer whose stored HTML we did not render (the Flask prototype's Python-Markdown passed raw HTML
 * through, so its txcontent may hold live script). The markdown is rendered again; an answer whose markdown was lost
 * keeps its old HTML only through the same allowlist; and input that makes either throw is shown as plain text, so
 * one odd row can never stop an adoption.
 */
export function renderAdoptedAnswer(source: string | null, untrustedHtml: string | null): string {
  try {
    return source === null ? sanitizeHtml(untrustedHtml ?? '', SANITIZE_OPTIONS) : renderMarkdown(source);
  } catch {
    return `<pre>${markdown.utils.escapeHtml(source ?? untrustedHtml ?? '')}</pre>`;
  }
}
