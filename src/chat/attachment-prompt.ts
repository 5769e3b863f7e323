import type { UserContentPart } from '../llm/model-client.ts';

/** A file of a prompt as the model is sent it; `content` is null when it was not read (a turn too old to be sent). */
export interface ModelFile {
  name: string;
  kind: 'text' | 'image';
  mediaType: string;
  /** What it weighs against MAX_HISTORY_CHARS: a text file's fenced block (see fencedFile); an image's IMAGE_CHARS. */
  chars: number;
  content: Buffer | null;
}

/**
 * What one image weighs against MAX_HISTORY_CHARS: about what a model bills for it (OpenAI: 765 tokens for a 1024 px
 * image at high detail), at 4 characters a token. So a long chat's old images leave the history like old text does,
 * and at the default 48,000 characters at most 15 images go with one request.
 */
export const IMAGE_CHARS = 3_200;

/**
 * A text file as the model reads it: its name, then its text in a code fence longer than any run of backticks
 * inside it, so no line of the file can close the fence early and pass for our own words (CommonMark §4.5).
 */
export function fencedFile(name: string, text: string): string {
  let longest = 0;
  for (const run of text.matchAll(/`+/g)) longest = Math.max(longest, run[0].length);
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `File ${JSON.stringify(name)}:\n${fence}\n${text}${text.endsWith('\n') ? '' : '\n'}${fence}`;
}

/** What a model that does not take images reads in place of one (a chat switched to it after images were sent). */
export function imageNote(name: string): string {
  return `[Image ${JSON.stringify(name)} not shown: this model does not take images.]`;
}

const SEPARATOR = '\n\n';

/** What a prompt with its files weighs against MAX_HISTORY_CHARS. */
export function promptChars(prompt: string, files: ModelFile[], vision: boolean): number {
  let chars = prompt.length;
  for (const f of files) chars += SEPARATOR.length + (f.kind === 'text' ? f.chars : vision ? IMAGE_CHARS : imageNote(f.name).length);
  return chars;
}

/**
 * A user message with its files: text files as fenced blocks before the prompt (the question after what it is
 * about), images as OpenAI image_url parts (data: URLs) for a vision model, or a note for another. Plain text when
 * there is no image part, as every OpenAI-compatible server takes that.
 */
export function userContent(prompt: string, files: ModelFile[], vision: boolean): string | UserContentPart[] {
  if (files.length === 0) return prompt;
  const texts: string[] = [];
  const images: UserContentPart[] = [];
  for (const f of files) {
    if (f.kind === 'text') texts.push(fencedFile(f.name, f.content === null ? '' : stripBom(f.content.toString('utf8'))));
    else if (vision && f.content !== null) images.push({ type: 'image_url', image_url: { url: `data:${f.mediaType};base64,${f.content.toString('base64')}` } });
    else texts.push(imageNote(f.name));
  }
  const text = [...texts, prompt].join(SEPARATOR);
  return images.length === 0 ? text : [{ type: 'text', text }, ...images];
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
