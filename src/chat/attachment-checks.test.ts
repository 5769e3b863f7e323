import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanFileName } from './attachment-checks.ts';
import { fencedFile } from './attachment-prompt.ts';
import { contentDisposition } from './attachment-routes.ts';
import { attachmentProblem, MAX_FILE_NAME_CHARS, sniffImageType } from './attachment-rules.ts';

test('a file name keeps only its last path segment, loses control and text-direction characters, and is cut keeping its extension', () => {
  assert.equal(cleanFileName('../../etc/passwd'), 'passwd');
  assert.equal(cleanFileName('C:\\Users\\bob\\report.pdf'), 'report.pdf');
  assert.equal(cleanFileName('invoice\u202Etxt.exe'), 'invoicetxt.exe');
  assert.equal(cleanFileName('a\u0000b\nc.txt'), 'abc.txt');
  assert.equal(cleanFileName('  '), 'file');
  const long = cleanFileName(`${'é'.repeat(400)}.md`);
  assert.equal([...long].length, MAX_FILE_NAME_CHARS);
  assert.ok(long.endsWith('é.md'));
});

test('Content-Disposition carries an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187), nothing that breaks the header', () => {
  assert.equal(contentDisposition('attachment', 'notes.md'), `attachment; filename="notes.md"; filename*=UTF-8''notes.md`);
  assert.equal(contentDisposition('inline', 'café "x".png'), `inline; filename="caf_ _x_.png"; filename*=UTF-8''caf%C3%A9%20%22x%22.png`);
  assert.equal(contentDisposition('attachment', "it's (1).txt"), `attachment; filename="it's (1).txt"; filename*=UTF-8''it%27s%20%281%29.txt`);
});

test('the type is the content’s; a name that says otherwise is refused', () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(sniffImageType(png), 'image/png');
  assert.equal(sniffImageType(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 ')), 'image/webp');
  assert.equal(sniffImageType(new TextEncoder().encode('<svg onload=alert(1)>')), null, 'SVG is not an image here');
  assert.equal(attachmentProblem('photo.jpg', 10, png), null, 'a PNG named .jpg is still an image (served as PNG)');
  assert.match(attachmentProblem('photo.png', 10, new TextEncoder().encode('text')) ?? '', /not a PNG, JPEG, WebP or GIF image/);
  assert.match(attachmentProblem('readme.txt', 10, png) ?? '', /holds an image/);
  assert.equal(attachmentProblem('Makefile', 10, new TextEncoder().encode('all:')), null, 'no extension: the content decides');
  assert.match(attachmentProblem('empty.txt', 0, new Uint8Array()) ?? '', /is empty/);
});

test('a fence is longer than any run of backticks in the file, so the file cannot close it', () => {
  assert.equal(fencedFile('a.md', 'x'), 'File "a.md":\n```\nx\n```');
  assert.equal(fencedFile('b.md', 'a ``` b ```` c\n'), 'File "b.md":\n`````\na ``` b ```` c\n`````');
  assert.equal(fencedFile('"quoted"\n.md', 'x'), 'File "\\"quoted\\"\\n.md":\n```\nx\n```', 'the name cannot start a line of its own');
});
