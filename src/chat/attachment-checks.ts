import { withoutBidiControls } from '../http/display-name.ts';
import { BadRequestError } from '../http/errors.ts';
import { fencedFile } from './attachment-prompt.ts';
import {
  attachmentProblem,
  formatBytes,
  type ImageType,
  MAX_ATTACHMENTS,
  MAX_ATTACHMENTS_TOTAL_BYTES,
  MAX_FILE_NAME_CHARS,
  sniffImageType,
} from './attachment-rules.ts';
import { MalformedImageError, stripImageMetadata } from './image-metadata.ts';

/** A file as it arrived: its name as the client gave it, and its bytes. */
export interface UploadedFile {
  name: string;
  bytes: Buffer;
}

/** A file that passed every check, ready to store: an image already stripped of its metadata. */
export interface CheckedAttachment {
  name: string;
  kind: 'text' | 'image';
  mediaType: 'text/plain' | ImageType;
  content: Buffer;
  /** What it weighs against MAX_HISTORY_CHARS (its fenced block; see attachment-prompt.ts). */
  chars: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The name we keep and show: its last path segment (a browser sends only that, a script may send "../../x"), without
 * control or text-direction characters (a U+202E could make "exe.txt" read as "txt.exe"), at most MAX_FILE_NAME_CHARS.
 */
export function cleanFileName(raw: string): string {
  const base = raw.split(/[/\\]/).pop() ?? '';
  const name = withoutBidiControls(base.toWellFormed())
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '')
    .trim();
  const chars = [...name];
  if (chars.length === 0) return 'file';
  if (chars.length <= MAX_FILE_NAME_CHARS) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
  return chars.slice(0, MAX_FILE_NAME_CHARS - [...ext].length).join('') + ext;
}

/**
 * Every rule a prompt's files must meet, decided on their content: the type of an image by its signature, a text file
 * by being UTF-8 without NUL. Throws BadRequestError naming the file and the reason; nothing has been stored yet.
 */
export function checkAttachments(files: UploadedFile[]): CheckedAttachment[] {
  if (files.length > MAX_ATTACHMENTS) throw new BadRequestError(`Too many files: at most ${MAX_ATTACHMENTS} with one message.`);
  const total = files.reduce((n, f) => n + f.bytes.length, 0);
  if (total > MAX_ATTACHMENTS_TOTAL_BYTES)
    throw new BadRequestError(
      `The files are too large together (${formatBytes(total)}): at most ${formatBytes(MAX_ATTACHMENTS_TOTAL_BYTES)} with one message.`,
    );
  return files.map(checkOne);
}

function checkOne(file: UploadedFile): CheckedAttachment {
  const name = cleanFileName(file.name);
  const problem = attachmentProblem(name, file.bytes.length, file.bytes.subarray(0, 16));
  if (problem) throw new BadRequestError(problem);
  const image = sniffImageType(file.bytes);
  if (image) {
    try {
      return { name, kind: 'image', mediaType: image, content: stripImageMetadata(file.bytes, image), chars: 0 };
    } catch (err) {
      if (err instanceof MalformedImageError) throw new BadRequestError(`${name} is not a valid image: ${err.message}.`);
      throw err;
    }
  }
  let text: string;
  try {
    text = utf8.decode(file.bytes);
  } catch {
    throw new BadRequestError(`${name} is not a text file in UTF-8 (nor a PNG, JPEG, WebP or GIF image).`);
  }
  if (text.includes('\u0000')) throw new BadRequestError(`${name} is not a text file: it contains NUL bytes.`);
  const withoutBom = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return { name, kind: 'text', mediaType: 'text/plain', content: file.bytes, chars: fencedFile(name, withoutBom).length };
}
