import { crc32, deflateSync } from 'node:zlib';

/**
 * Small valid images of the four accepted formats, each carrying metadata that must not survive (the words in
 * SECRET): a PNG tEXt chunk, a JPEG EXIF segment (Chromium's ICC profile too), a WebP EXIF chunk (and ICCP), a GIF
 * comment, plus bytes after the image's end. The JPEG and WebP bitstreams were made by Chromium's canvas (4×3 px).
 */
export const SECRET = 'GPS 48.8584N 2.2945E secret-camera';

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** A width×height RGB PNG (a gradient), with a tEXt chunk before and after the image data, and junk after IEND. */
export function pngImage(width = 4, height = 3, opts: { metadata?: boolean } = {}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push((x * 255) / Math.max(1, width - 1), (y * 255) / Math.max(1, height - 1), 128);
  }
  const meta = opts.metadata !== false;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...(meta ? [pngChunk('tEXt', Buffer.from(`Comment\0${SECRET}`, 'latin1')), pngChunk('eXIf', Buffer.from(`MM\0*${SECRET}`, 'latin1'))] : []),
    pngChunk('IDAT', deflateSync(Buffer.from(rows))),
    ...(meta ? [pngChunk('iTXt', Buffer.from(`XML:com.adobe.xmp\0\0\0\0\0${SECRET}`, 'latin1'))] : []),
    pngChunk('IEND', Buffer.alloc(0)),
    ...(meta ? [Buffer.from(SECRET)] : []),
  ]);
}

const CHROMIUM_JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAADAAQDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAf/xAAeEAABBAIDAQAAAAAAAAAAAAACAAEDEwQREiExQf/EABUBAQEAAAAAAAAAAAAAAAAAAAcI/8QAGhEBAQADAQEAAAAAAAAAAAAAAQIAAxEhQf/aAAwDAQACEQMRAD8Am+ZnSZ1FgwjTEMI0wBFsW8cuLNyLvsi2T/XdERU5GuNUkawA+HmE1U09p65//9k=',
  'base64',
);
const CHROMIUM_WEBP = Buffer.from(
  'UklGRkQCAABXRUJQVlA4WAoAAAAgAAAAAwAAAgAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZWUDggVgAAADADAJ0BKgQAAwAAwBIlqAJ0ugH4ASwDBAPX/GCgFmzNFwAA/uld01r8KqB/R9MV863Xj/9+7GV2ktm/gXm97SWzfzLz/mXn/01OiX41OiX56P84AAAA',
  'base64',
);

/** Chromium's JPEG with an EXIF APP1 segment and a COM segment added after SOI, and junk after EOI. */
export function jpegImage(): Buffer {
  const segment = (marker: number, body: Buffer) => {
    const head = Buffer.from([0xff, marker, 0, 0]);
    head.writeUInt16BE(body.length + 2, 2);
    return Buffer.concat([head, body]);
  };
  const exif = segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0MM\0*', 'latin1'), Buffer.from(SECRET)]));
  const comment = segment(0xfe, Buffer.from(SECRET));
  return Buffer.concat([CHROMIUM_JPEG.subarray(0, 2), exif, comment, CHROMIUM_JPEG.subarray(2), Buffer.from(SECRET)]);
}

/** Chromium's WebP (VP8X with an ICC profile) with an EXIF chunk added, its flag set, and the RIFF size updated. */
export function webpImage(): Buffer {
  const body = Buffer.from(SECRET.length % 2 === 0 ? SECRET : `${SECRET} `);
  const head = Buffer.alloc(8);
  head.write('EXIF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  const out = Buffer.concat([CHROMIUM_WEBP, head, body]);
  out.writeUInt32LE(out.length - 8, 4);
  out[20] = out[20]! | 0x08; // VP8X: "has EXIF"
  return out;
}

/** A 2×2 GIF89a with a comment extension and an XMP application extension. */
export function gifImage(): Buffer {
  const subBlocks = (data: Buffer) => {
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += 255) {
      const piece = data.subarray(i, i + 255);
      parts.push(Buffer.from([piece.length]), piece);
    }
    return Buffer.concat([...parts, Buffer.from([0])]);
  };
  return Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    Buffer.from([2, 0, 2, 0, 0x80, 0, 0]), // 2×2, global colour table of 2 entries
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x21, 0xfe]),
    subBlocks(Buffer.from(SECRET)),
    Buffer.from([0x21, 0xff, 11]),
    Buffer.from('XMP DataXMP', 'latin1'),
    subBlocks(Buffer.from(SECRET)),
    Buffer.from([0x21, 0xf9, 4, 0, 0, 0, 0, 0]), // graphic control
    Buffer.from([0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0]), // image descriptor 2×2
    Buffer.from([2, 2, 0x4c, 0x01, 0]), // LZW minimum code size 2, one data sub-block, end
    Buffer.from([0x3b]),
  ]);
}
