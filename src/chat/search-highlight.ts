import { html, type SafeHtml } from '../views/html.ts';

/**
 * ts_headline marks the words it found with these two characters (src/chat/chat-search.ts). They are removed from the
 * text before PostgreSQL sees it, so every one in its output is its own mark; everything between them is still text
 * someone else wrote (a prompt, a model's answer) and is escaped like the rest. Nothing of ts_headline's output is
 * ever taken as HTML: the only tags in a highlighted passage are the <mark>s made here.
 */
export const MATCH_START = '\u0001';
export const MATCH_END = '\u0002';
/** What < and > are while ts_headline holds the text (chat-search.ts says why). */
export const ANGLE_OPEN = '\ue000';
export const ANGLE_CLOSE = '\ue001';
const restoreAngles = (text: string) => text.replaceAll(ANGLE_OPEN, '<').replaceAll(ANGLE_CLOSE, '>');

/** A passage as parts: plain text and the matched words, in order. */
export interface PassagePart {
  text: string;
  match: boolean;
}

/** Splits ts_headline's output at its marks; a mark without its pair (never seen, but possible) is dropped, not trusted. */
export function passageParts(marked: string): PassagePart[] {
  const parts: PassagePart[] = [];
  const push = (text: string, match: boolean) => {
    text = restoreAngles(text);
    if (text === '') return;
    const last = parts.at(-1);
    if (last && last.match === match) last.text += text;
    else parts.push({ text, match });
  };
  for (const [i, chunk] of marked.split(MATCH_START).entries()) {
    const end = chunk.indexOf(MATCH_END);
    if (i === 0 || end === -1) push(chunk.replaceAll(MATCH_END, ''), false);
    else {
      push(chunk.slice(0, end), true);
      push(chunk.slice(end + 1).replaceAll(MATCH_END, ''), false);
    }
  }
  return parts;
}

/** The passage as text alone (the JSON's `passage`). */
export const passageText = (parts: PassagePart[]) => parts.map((p) => p.text).join('');

/** The passage as HTML: escaped text, the matched words in <mark>. */
export function passageHtml(parts: PassagePart[]): SafeHtml {
  return html`${parts.map((p) => (p.match ? html`<mark>${p.text}</mark>` : p.text))}`;
}
