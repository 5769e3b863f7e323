import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../auth/guards.ts';
import type { Db } from '../db/database.ts';
import { BadRequestError } from '../http/errors.ts';
import { parseBody } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { outcomeNote, SEARCH_QUERY_MAX_CHARS, searchChats } from './chat-search.ts';
import { passageHtml, passageText } from './search-highlight.ts';
import { searchPage } from './search-views.ts';

/** `?q=`: one string (a repeated `q` is an error, not an array), at most SEARCH_QUERY_MAX_CHARS. */
const searchQuery = z.object({
  q: z
    .string({ error: (issue) => (issue.input === undefined ? 'Type the words to search for (q).' : 'Give the words to search for (q) once.') })
    .max(SEARCH_QUERY_MAX_CHARS, `A search is at most ${SEARCH_QUERY_MAX_CHARS} characters.`)
    .transform((v) => v.trim()),
});

/** Search of one's own chats: the results page (GET /chat/search) and its JSON (GET /api/chats?q=). */
export async function searchRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;

  app.get('/chat/search', async (req, reply) => {
    const user = requireUser(req);
    const page = { title: 'Search your chats', scripts: [assetUrl('search')], styles: ['/static/search.css'] };
    const raw = (req.query as Record<string, unknown>).q;
    if (raw === undefined) return reply.page({ ...page, body: searchPage({ query: '', outcome: null, error: null }) });
    const parsed = parseBody(searchQuery, req.query);
    if (!parsed.ok) {
      const query = typeof raw === 'string' ? raw.slice(0, SEARCH_QUERY_MAX_CHARS) : '';
      return reply.page({ ...page, body: searchPage({ query, outcome: null, error: parsed.errors.q ?? parsed.message }) }, 400);
    }
    const query = parsed.data.q;
    const outcome = query === '' ? null : await searchChats(db, user.userId, query);
    return reply.page({ ...page, title: query === '' ? page.title : `${query} – search`, body: searchPage({ query, outcome, error: null }) });
  });

  app.get('/api/chats', async (req) => {
    const user = requireUser(req);
    const parsed = parseBody(searchQuery, req.query);
    if (!parsed.ok) throw new BadRequestError(parsed.errors.q ?? parsed.message);
    if (parsed.data.q === '') throw new BadRequestError('Type the words to search for (q).');
    const outcome = await searchChats(db, user.userId, parsed.data.q);
    return {
      query: parsed.data.q,
      note: outcomeNote(outcome),
      results:
        outcome.kind !== 'hits'
          ? []
          : outcome.hits.map((h) => ({
              id: h.id,
              title: h.title,
              updated_at: h.updatedAt,
              rank: h.rank,
              title_html: h.titleParts && passageHtml(h.titleParts).value,
              passage: h.passage && {
                source: h.passage.source,
                text: passageText(h.passage.parts),
                html: passageHtml(h.passage.parts).value,
                // Text comes before / after the passage in its prompt or answer (the page shows "…").
                cut_before: h.passage.cutBefore,
                cut_after: h.passage.cutAfter,
              },
            })),
    };
  });
}
