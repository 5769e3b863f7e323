import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { gifImage, jpegImage, pngImage, SECRET, webpImage } from '../../test/image-fixtures.ts';
import { type ImageType, sniffImageType } from './attachment-rules.ts';
import { MalformedImageError, stripImageMetadata } from './image-metadata.ts';

const fixtures: Array<[ImageType, () => Buffer]> = [
  ['image/png', () => pngImage()],
  ['image/jpeg', jpegImage],
  ['image/webp', webpImage],
  ['image/gif', gifImage],
];

test('each format loses its metadata and the bytes after its end, keeps its type, and stripping twice changes nothing', () => {
  for (const [type, make] of fixtures) {
    const original = make();
    assert.ok(original.includes(SECRET), `${type}: the fixture carries the secret`);
    const stripped = stripImageMetadata(original, type);
    assert.equal(stripped.includes(SECRET), false, `${type}: the secret is gone`);
    assert.equal(sniffImageType(stripped), type);
    assert.ok(stripped.length < original.length);
    assert.deepEqual(stripImageMetadata(stripped, type), stripped, `${type}: idempotent`);
  }
});

test("Chromium's ICC profiles go too, and WebP's VP8X no longer claims them", () => {
  const jpeg = stripImageMetadata(jpegImage(), 'image/jpeg');
  assert.equal(jpeg.includes(Buffer.from('ICC_PROFILE')), false);
  const webp = stripImageMetadata(webpImage(), 'image/webp');
  assert.equal(webp.includes(Buffer.from('ICCP')), false);
  assert.equal(webp.includes(Buffer.from('EXIF')), false);
  assert.equal(webp.readUInt32LE(4), webp.length - 8, 'the RIFF size is the new size');
  assert.equal(webp[20]! & (0x20 | 0x08 | 0x04), 0, 'VP8X flags for ICC, EXIF and XMP are cleared');
});

interface Chunk {
  type: string;
  data: Uint8Array;
}

function chunkBytes({ type, data }: Chunk): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

function chunksOf(png: Buffer): Chunk[] {
  const chunks: Chunk[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    chunks.push({ type: png.toString('latin1', at + 4, at + 8), data: png.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return chunks;
}

// Ancillary chunk types (lower-case first letter) that are not on the keep list: what a camera or an editor may add.
const metadataType = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'), minLength: 3, maxLength: 3 }),
  )
  .map(([a, rest]) => a + rest)
  .filter((t) => !['tRNS', 'gAMA', 'cHRM', 'sRGB', 'sBIT', 'bKGD', 'pHYs', 'acTL', 'fcTL', 'fdAT'].includes(t));

test('property: a PNG with any metadata chunks anywhere keeps exactly its drawing chunks, byte for byte', () => {
  const base = chunksOf(pngImage(5, 4, { metadata: false }));
  fc.assert(
    fc.property(fc.array(fc.record({ at: fc.nat(), type: metadataType, data: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 8 }), (extras) => {
      const chunks = [...base];
      // Anywhere after IHDR and before IEND.
      for (const e of extras) chunks.splice(1 + (e.at % (chunks.length - 1)), 0, { type: e.type, data: e.data });
      const png = Buffer.concat([pngImage().subarray(0, 8), ...chunks.map(chunkBytes)]);
      const stripped = stripImageMetadata(png, 'image/png');
      assert.deepEqual(
        chunksOf(stripped).map((c) => [c.type, Buffer.from(c.data).toString('hex')]),
        base.map((c) => [c.type, Buffer.from(c.data).toString('hex')]),
      );
    }),
  );
});

test('property: any bytes behind a signature are stripped or refused with MalformedImageError, nothing else', () => {
  for (const [type, make] of fixtures) {
    const valid = make();
    const signature = valid.subarray(0, 12);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((tail) => Buffer.concat([signature, tail])),
          // A valid image with a few bytes changed, cut short or grown: lengths that lie, CRCs that fail, markers lost.
          fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat()).map(([flips, cut]) => {
            const copy = Buffer.from(valid);
            for (const [at, value] of flips) copy[at % copy.length] = value;
            return copy.subarray(0, Math.max(12, copy.length - (cut % 40)));
          }),
        ),
        (bytes) => {
          try {
            const out = stripImageMetadata(bytes, type);
            assert.ok(out.length <= bytes.length + 1, 'never larger (but a WebP chunk’s missing pad byte)');
          } catch (err) {
            if (!(err instanceof MalformedImageError)) throw err;
          }
        },
      ),
      { numRuns: 300 },
    );
  }
});
