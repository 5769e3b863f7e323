/**
 * The rules for files sent with a prompt, in one place for the server (which enforces them) and the page (web/chat,
 * which checks them first so a user hears at once). Pure and import-free on purpose: the browser bundle takes it.
 */
export const MAX_ATTACHMENTS = 10;
export const MAX_TEXT_FILE_BYTES = 512 * 1024;
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** All of one prompt's files together: ten images at the limit would be 50 MiB held in memory per request. */
export const MAX_ATTACHMENTS_TOTAL_BYTES = 20 * 1024 * 1024;
/** Longest file name kept (code points); longer ones are cut, keeping the extension. */
export const MAX_FILE_NAME_CHARS = 200;

export type ImageType = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif';

const IMAGE_EXTENSIONS: Record<string, ImageType> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  jpe: 'image/jpeg',
  jfif: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
};

/** Names that say "text": a file under one of them holding an image is refused (the wrong file, most likely). */
const TEXT_EXTENSIONS = new Set(
  'txt md markdown csv tsv json jsonl yaml yml toml ini cfg conf log xml html htm css js mjs cjs ts tsx jsx py rb go rs java kt c h cc cpp hpp cs php sh bash zsh sql r swift scala lua pl ex exs erl hs ml vue svelte tex rst adoc srt vtt'.split(
    ' ',
  ),
);

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

/** What a name claims: an image type, 'text', or null (no extension we know: the content alone decides). */
export function kindClaimedByName(name: string): ImageType | 'text' | null {
  const ext = extensionOf(name);
  return IMAGE_EXTENSIONS[ext] ?? (TEXT_EXTENSIONS.has(ext) ? 'text' : null);
}

const startsWith = (bytes: Uint8Array, prefix: number[], at = 0) => prefix.every((b, i) => bytes[at + i] === b);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** The image type by its first bytes (the formats' signatures), whatever the name or the client says; else null. */
export function sniffImageType(head: Uint8Array): ImageType | null {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))) return 'image/gif';
  return null;
}

/** The largest a file of this kind may be. */
export function maxBytesOf(kind: 'text' | 'image'): number {
  return kind === 'image' ? MAX_IMAGE_BYTES : MAX_TEXT_FILE_BYTES;
}

/** "512 KiB", "5 MiB": limits and sizes as people read them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;
  return `${Number((bytes / (1024 * 1024 * 1024)).toFixed(2))} GiB`;
}

/** Why a file cannot be attached, judged on its name, size and first bytes (the server then reads it all); null: fine. */
export function attachmentProblem(name: string, size: number, head: Uint8Array): string | null {
  const image = sniffImageType(head);
  const claimed = kindClaimedByName(name);
  if (claimed !== null && claimed !== 'text' && image === null) return `${name} is not a PNG, JPEG, WebP or GIF image.`;
  if (claimed === 'text' && image !== null) return `${name} holds an image (${image}), not text. Give it the right extension if you meant to send the image.`;
  const kind = image ? 'image' : 'text';
  if (size > maxBytesOf(kind))
    return `${name} is too large (${formatBytes(size)}): ${kind === 'image' ? 'images' : 'text files'} may have at most ${formatBytes(maxBytesOf(kind))}.`;
  if (size === 0) return `${name} is empty.`;
  return null;
}
