import { BadRequestError } from './errors.ts';
import { assertStorableText } from './storable-text.ts';

const INVALID_ENCODING = 'The form contains characters that are not valid UTF-8. Check what you typed and send it again.';

function decode(component: string): string {
  return decodeURIComponent(component.replaceAll('+', ' '));
}

/**
 * application/x-www-form-urlencoded, strictly. The default parser keeps an undecodable `%FF` as the literal text
 * "%FF", so a broken client would store garbage as a name; here invalid percent-encoding, invalid UTF-8 (either
 * percent-encoded or raw bytes, which arrive as U+FFFD) and NUL (`%00` or raw, which PostgreSQL cannot store) is a
 * 400 before any handler runs. Encoded lone surrogates are invalid UTF-8 already (decodeURIComponent throws). A repeated field
 * becomes an array, which every form schema refuses, rather than one value silently winning.
 */
export function parseFormStrict(body: string): Record<string, string | string[]> {
  if (body.includes('\ufffd')) throw new BadRequestError(INVALID_ENCODING);
  const fields = new Map<string, string | string[]>();
  for (const pair of body.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decode(eq === -1 ? pair : pair.slice(0, eq));
      value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    } catch {
      throw new BadRequestError(INVALID_ENCODING);
    }
    assertStorableText(key);
    assertStorableText(value);
    const seen = fields.get(key);
    fields.set(key, seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]);
  }
  // fromEntries defines own properties, so a field named `__proto__` is just a field, never a prototype.
  return Object.fromEntries(fields);
}
