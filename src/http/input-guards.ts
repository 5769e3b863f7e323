import type { FastifyInstance } from 'fastify';
import { BadRequestError } from './errors.ts';
import { assertStorableJson, assertStorableText } from './storable-text.ts';

const INVALID_ENCODING = 'The request body is not valid UTF-8.';
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * application/json for the whole app: Fastify's own parser (prototype poisoning refused, an empty body a 400), fed
 * strictly decoded UTF-8 (the default decoding turns invalid bytes into U+FFFD and stores them), and refusing any
 * string, key or value, that could not be stored as sent (see storable-text.ts).
 */
export function installInputGuards(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      done(new BadRequestError(INVALID_ENCODING), undefined);
      return;
    }
    parseJson(req, text, (err, parsed) => {
      if (err) return done(err, undefined);
      try {
        assertStorableJson(parsed);
      } catch (refused) {
        return done(refused as Error, undefined);
      }
      done(null, parsed);
    });
  });

  // The query string is input too (`?next=`, filters): a NUL or lone surrogate there is refused the same way.
  app.addHook('preValidation', async (req) => {
    for (const [key, value] of Object.entries(req.query as Record<string, string | string[]>)) {
      assertStorableText(key);
      for (const one of [value].flat()) if (typeof one === 'string') assertStorableText(one);
    }
  });
}
