import { crc32 } from 'node:zlib';
import type { ImageType } from './attachment-rules.ts';

/** An image whose structure we cannot walk: refused rather than stored or sent half-understood. */
export class MalformedImageError extends Error {}

const fail = (what: string): never => {
  throw new MalformedImageError(what);
};

/**
 * The image without its metadata: EXIF (camera, GPS position, date), XMP, comments, text chunks, ICC profiles and
 * anything after the image's end. Not re-encoded (no image library; the pixels stay exactly as sent): each format's
 * chunks or segments are walked and only those that draw the image are kept (an allow-list, so an unknown kind of
 * metadata is dropped too). Throws MalformedImageError on a structure it cannot follow.
 * (A JPEG's EXIF orientation goes with the rest: a phone photo may then show turned. Said in the README.)
 */
export function stripImageMetadata(bytes: Uint8Array, type: ImageType): Buffer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'image/png':
      return stripPng(buf);
    case 'image/jpeg':
      return stripJpeg(buf);
    case 'image/webp':
      return stripWebp(buf);
    case 'image/gif':
      return stripGif(buf);
  }
}

/** PNG chunks that draw the image (critical ones, colour and transparency, APNG animation); tEXt, zTXt, iTXt, eXIf, tIME, iCCP… are dropped. */
const PNG_KEPT = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'gAMA', 'cHRM', 'sRGB', 'sBIT', 'bKGD', 'pHYs', 'acTL', 'fcTL', 'fdAT']);

function stripPng(buf: Buffer): Buffer {
  const kept: Buffer[] = [buf.subarray(0, 8)];
  let at = 8;
  let first = true;
  for (;;) {
    if (at + 12 > buf.length) fail('the PNG ends before its IEND chunk');
    const length = buf.readUInt32BE(at);
    const end = at + 12 + length;
    if (length > 0x7fffffff || end > buf.length) fail('a PNG chunk runs past the end of the file');
    const type = buf.toString('latin1', at + 4, at + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) fail('a PNG chunk has an invalid type');
    if (crc32(buf.subarray(at + 4, at + 8 + length)) !== buf.readUInt32BE(at + 8 + length)) fail(`the PNG chunk ${type} is damaged (CRC)`);
    if (first && type !== 'IHDR') fail('the PNG does not begin with IHDR');
    first = false;
    // A critical chunk we do not know (upper-case first letter) cannot be dropped without breaking the image.
    if (!PNG_KEPT.has(type) && type.charCodeAt(0) < 0x61) fail(`the PNG has an unknown critical chunk ${type}`);
    if (PNG_KEPT.has(type)) kept.push(buf.subarray(at, end));
    at = end;
    if (type === 'IEND') return Buffer.concat(kept); // whatever follows IEND is dropped
  }
}

/**
 * JPEG segments: markers with a length, except SOI/EOI/RSTn, and the entropy-coded data after SOS, which runs to the
 * next marker that is not a stuffed 0xFF00 or a restart. Kept: APP0 (JFIF) and APP14 (Adobe: says how CMYK/YCCK is
 * stored), the tables, frames and scans. Dropped: APP1 (EXIF, XMP), APP2 (ICC, FlashPix), APP3–APP13, APP15, COM.
 */
function stripJpeg(buf: Buffer): Buffer {
  const kept: Buffer[] = [buf.subarray(0, 2)];
  let at = 2;
  let sawFrame = false;
  for (;;) {
    if (at + 2 > buf.length) fail('the JPEG ends before its EOI marker');
    if (buf[at] !== 0xff) fail('a JPEG marker was expected');
    const marker = buf[at + 1]!;
    if (marker === 0xff) {
      at++; // fill bytes before a marker
      continue;
    }
    if (marker === 0xd9) {
      if (!sawFrame) fail('the JPEG has no image frame');
      kept.push(buf.subarray(at, at + 2));
      return Buffer.concat(kept); // whatever follows EOI is dropped
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) fail('a JPEG marker is out of place');
    if (at + 4 > buf.length) fail('a JPEG segment runs past the end of the file');
    const length = buf.readUInt16BE(at + 2);
    const end = at + 2 + length;
    if (length < 2 || end > buf.length) fail('a JPEG segment runs past the end of the file');
    const isApp = marker >= 0xe0 && marker <= 0xef;
    const keep = !isApp && marker !== 0xfe ? true : (marker === 0xe0 && isJfif(buf, at)) || marker === 0xee;
    if (keep) kept.push(buf.subarray(at, end));
    if ((marker >= 0xc0 && marker <= 0xc3) || (marker >= 0xc5 && marker <= 0xc7) || (marker >= 0xc9 && marker <= 0xcb) || (marker >= 0xcd && marker <= 0xcf))
      sawFrame = true;
    at = end;
    if (marker === 0xda) {
      const scanEnd = endOfScan(buf, at);
      kept.push(buf.subarray(at, scanEnd));
      at = scanEnd;
    }
  }
}

function isJfif(buf: Buffer, at: number): boolean {
  const id = buf.toString('latin1', at + 4, at + 9);
  return id === 'JFIF\0' || id === 'JFXX\0';
}

/** Where a scan's entropy-coded data ends: at the first 0xFF followed by a marker other than 0x00 (stuffing) or RSTn. */
function endOfScan(buf: Buffer, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] !== 0xff) continue;
    const next = buf[i + 1]!;
    if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) continue;
    return i;
  }
  return fail('the JPEG ends inside its image data');
}

/** WebP (RIFF) chunks kept: the bitstreams (VP8, VP8L), alpha, animation and VP8X; EXIF, XMP and ICCP are dropped. */
const WEBP_KEPT = new Set(['VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF']);
const VP8X_ICC = 0x20;
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

function stripWebp(buf: Buffer): Buffer {
  if (buf.length < 12) fail('the WebP file is too short');
  const riffEnd = 8 + buf.readUInt32LE(4);
  if (riffEnd > buf.length || riffEnd < 12) fail('the WebP file is shorter than its header says');
  const kept: Buffer[] = [];
  let at = 12;
  let hasImage = false;
  while (at < riffEnd) {
    if (at + 8 > riffEnd) fail('a WebP chunk runs past the end of the file');
    const type = buf.toString('latin1', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    const end = at + 8 + size + (size % 2); // chunks are padded to an even size
    if (at + 8 + size > riffEnd) fail('a WebP chunk runs past the end of the file');
    if (type === 'VP8 ' || type === 'VP8L' || type === 'ANMF') hasImage = true;
    if (WEBP_KEPT.has(type)) {
      const chunk = Buffer.from(buf.subarray(at, Math.min(end, riffEnd)));
      if (type === 'VP8X' && size >= 1) chunk[8] = chunk[8]! & ~(VP8X_ICC | VP8X_EXIF | VP8X_XMP); // the flags no longer true
      kept.push(chunk.length % 2 === 0 ? chunk : Buffer.concat([chunk, Buffer.alloc(1)]));
    }
    at = end;
  }
  if (!hasImage) fail('the WebP file has no image data');
  const body = Buffer.concat(kept);
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(4 + body.length, 4);
  header.write('WEBP', 8, 'latin1');
  return Buffer.concat([header, body]);
}

/** The application extensions that only say how an animation loops (NETSCAPE2.0, ANIMEXTS1.0); others (XMP…) go. */
const GIF_LOOP_APPS = new Set(['NETSCAPE2.0', 'ANIMEXTS1.0']);

function stripGif(buf: Buffer): Buffer {
  if (buf.length < 13) fail('the GIF file is too short');
  const flags = buf[10]!;
  let at = 13 + (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0); // header, screen descriptor, global colour table
  if (at > buf.length) fail('the GIF ends inside its colour table');
  const kept: Buffer[] = [buf.subarray(0, at)];
  let frames = 0;
  for (;;) {
    if (at >= buf.length) fail('the GIF ends before its trailer');
    const introducer = buf[at]!;
    if (introducer === 0x3b) {
      if (frames === 0) fail('the GIF has no image');
      kept.push(buf.subarray(at, at + 1));
      return Buffer.concat(kept); // whatever follows the trailer is dropped
    }
    if (introducer === 0x2c) {
      if (at + 10 > buf.length) fail('the GIF ends inside an image descriptor');
      const local = buf[at + 9]!;
      let end = at + 10 + (local & 0x80 ? 3 * 2 ** ((local & 0x07) + 1) : 0) + 1; // descriptor, local colour table, LZW code size
      end = endOfSubBlocks(buf, end);
      kept.push(buf.subarray(at, end));
      frames++;
      at = end;
    } else if (introducer === 0x21) {
      if (at + 2 > buf.length) fail('the GIF ends inside an extension');
      const label = buf[at + 1]!;
      const end = endOfSubBlocks(buf, at + 2);
      // 0xF9: graphic control (timing, transparency) is kept; 0xFE comments and 0x01 plain text are dropped.
      const keep = label === 0xf9 || (label === 0xff && GIF_LOOP_APPS.has(buf.toString('latin1', at + 3, at + 14)) && buf[at + 2] === 11);
      if (keep) kept.push(buf.subarray(at, end));
      at = end;
    } else {
      fail('the GIF has an unknown block');
    }
  }
}

/** GIF data sub-blocks: a length byte, that many bytes, …, ended by a zero length. */
function endOfSubBlocks(buf: Buffer, from: number): number {
  let at = from;
  for (;;) {
    if (at >= buf.length) fail('the GIF ends inside a data block');
    const size = buf[at]!;
    at += 1 + size;
    if (size === 0) return at;
  }
}
