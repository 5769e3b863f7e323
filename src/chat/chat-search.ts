import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { ANGLE_CLOSE, ANGLE_OPEN, MATCH_END, MATCH_START, type PassagePart, passageParts, passageText } from './search-highlight.ts';

/**
 * Search of one's own chats: PostgreSQL full-text search over chatbot_schema.chat_search (migration 028: one vector per
 * chat, title, prompts and answers' markdown, `simple` configuration), in websearch_to_tsquery's syntax: words (all
 * must match), "a quoted phrase", -excluded, `or`. The owner is in the WHERE of the indexed scan and again in the
 * join to chat: no path returns another user's chat.
 */

/** Longer queries are refused (400): nobody types more, and each word is one more index lookup. */
export const SEARCH_QUERY_MAX_CHARS = 200;
/** Results per search, best first: the ranking reads only the matching rows' vectors, the passages only these. */
export const SEARCH_RESULTS_MAX = 30;
/**
 * At most this many of the matching chats, the newest, are ranked: ranking reads each one's whole vector (~3.5 KB from
 * TOAST for 20 answered prompts), and a common word matches every chat (10,000 ranked: ~250 ms; 500: a few ms).
 */
export const SEARCH_RANK_CANDIDATES = 500;
/** Of a long prompt or answer, the passage is looked for in its first this many characters (bounds the work per hit). */
const PASSAGE_SOURCE_MAX_CHARS = 20_000;

export interface SearchHit {
  id: number;
  title: string | null;
  updatedAt: Date;
  rank: number;
  /** The title with the matched words marked, when it matches. */
  titleParts: PassagePart[] | null;
  /** The first prompt or answer that matches, around its matched words; null when only the title (or words spread over several turns) matched. */
  passage: Passage | null;
}

export interface Passage {
  source: 'prompt' | 'answer';
  parts: PassagePart[];
  /** Whether text comes before or after the passage in its prompt or answer (shown as "…"). */
  cutBefore: boolean;
  cutAfter: boolean;
}

export type SearchOutcome = { kind: 'hits'; hits: SearchHit[] } | { kind: 'no-words' } | { kind: 'only-exclusions' };

/** Why a search found nothing to look for, in words a user can act on. */
export function outcomeNote(outcome: SearchOutcome): string | null {
  if (outcome.kind === 'no-words') return 'There are no words to search for in that: type a word or two.';
  if (outcome.kind === 'only-exclusions') return 'Add a word to look for: a search of only excluded words (-word) would list every chat.';
  return null;
}

/** ts_headline's options: our marks (see search-highlight.ts), a passage of a dozen to thirty words. */
const HEADLINE_OPTIONS = `StartSel=${MATCH_START}, StopSel=${MATCH_END}, MinWords=12, MaxWords=30, MaxFragments=2, FragmentDelimiter=" … "`;
const TITLE_OPTIONS = `StartSel=${MATCH_START}, StopSel=${MATCH_END}, HighlightAll=true`;

/**
 * The text as ts_headline gets it: our marks removed (every one in its output is then its own), and < > swapped for
 * two private-use characters (which go first), because its parser takes `<img src=x …>` for a tag and drops it from
 * the passage. They are swapped back (restoreAngles) before the text is escaped.
 */
const unmarked = (column: ReturnType<typeof sql>) =>
  sql`translate(${column}, ${`<>${ANGLE_OPEN}${ANGLE_CLOSE}${MATCH_START}${MATCH_END}`}, ${ANGLE_OPEN + ANGLE_CLOSE})`;

export async function searchChats(db: Db, userId: number, text: string): Promise<SearchOutcome> {
  // What the words became: nothing (only punctuation), or only exclusions (querytree 'T': every chat would match,
  // and no index can find "all but"), is said so instead of searched.
  const parsed = await sql<{ tree: string; loose: string | null }>`
    SELECT querytree(q) AS tree,
      -- A phrase without exclusions: the same words joined by AND (a superset of its matches), see below.
      CASE WHEN q::text ~ '<(\d+|-)>' AND position('!' IN q::text) = 0 THEN regexp_replace(q::text, '<(\d+|-)>', '&', 'g') END AS loose
    FROM websearch_to_tsquery('simple', ${text}) q`.execute(db);
  const tree = parsed.rows[0]?.tree ?? '';
  if (tree === '') return { kind: 'no-words' };
  if (tree === 'T') return { kind: 'only-exclusions' };
  const loose = parsed.rows[0]?.loose ?? null;

  // The user's matching chats come from the index alone (materialized, so the planner cannot trade it for a walk of
  // the primary key that reads every user's vectors until enough match). Ranking reads each chat's whole vector, so
  // only the newest SEARCH_RANK_CANDIDATES matches are ranked. A phrase needs the vectors too (the index knows words,
  // not their order): its words' matches come from the index, newest first, and are checked for the phrase until
  // enough are found, rather than all of them (every chat holds the two commonest words).
  const newest = loose
    ? sql`
    matched AS MATERIALIZED (
      SELECT s.idchat FROM chatbot_schema.chat_search s WHERE s.idappuser = ${userId} AND s.tsv @@ ${loose}::tsquery
    ),
    newest AS (
      -- A subquery per row (not a join the planner could turn into a hash of every user's phrase matches): checked
      -- in order, the scan stops at the LIMIT.
      SELECT m.idchat FROM (SELECT idchat FROM matched ORDER BY idchat DESC) m CROSS JOIN q
      WHERE (SELECT s.tsv FROM chatbot_schema.chat_search s WHERE s.idchat = m.idchat) @@ q.q
      LIMIT ${SEARCH_RANK_CANDIDATES}
    ),`
    : sql`
    matched AS MATERIALIZED (
      SELECT s.idchat FROM chatbot_schema.chat_search s CROSS JOIN q WHERE s.idappuser = ${userId} AND s.tsv @@ q.q
    ),
    newest AS (SELECT idchat FROM matched ORDER BY idchat DESC LIMIT ${SEARCH_RANK_CANDIDATES}),`;

  const rows = await sql<{
    id: number;
    title: string | null;
    updatedAt: Date;
    rank: number;
    titleMarked: string | null;
    source: 'prompt' | 'answer' | null;
    passageMarked: string | null;
    bodyStart: string | null;
    bodyEnd: string | null;
  }>`
    WITH q AS (SELECT websearch_to_tsquery('simple', ${text}) AS q),
    ${newest}
    top AS (
      SELECT s.idchat, ts_rank(s.tsv, q.q, 1) AS rank
      FROM newest JOIN chatbot_schema.chat_search s ON s.idchat = newest.idchat CROSS JOIN q
      ORDER BY rank DESC, s.idchat DESC
      LIMIT ${SEARCH_RESULTS_MAX}
    )
    SELECT c.idchat AS id, c.txtitle AS title, c.dtupdated AS "updatedAt", top.rank::float8 AS rank,
      CASE WHEN to_tsvector('simple', coalesce(c.txtitle, '')) @@ q.q
        THEN ts_headline('simple', ${unmarked(sql`c.txtitle`)}, q.q, ${TITLE_OPTIONS}) END AS "titleMarked",
      p.source,
      CASE WHEN p.body IS NOT NULL THEN ts_headline('simple', p.body, q.q, ${HEADLINE_OPTIONS}) END AS "passageMarked",
      -- Whether the passage is the text's start and end (else the page shows "…" there).
      left(p.body, 24) AS "bodyStart", right(p.body, 24) AS "bodyEnd"
    FROM top
    JOIN chatbot_schema.chat c ON c.idchat = top.idchat AND c.idappuser = ${userId}
    CROSS JOIN q
    LEFT JOIN LATERAL (
      -- The first prompt that matches, else the first finished answer: index order, so the scan stops at the first.
      SELECT x.source, x.body FROM (
        (SELECT 'prompt' AS source, b.body FROM chatbot_schema.message m
          CROSS JOIN LATERAL (SELECT ${unmarked(sql`left(m.txmessage, ${PASSAGE_SOURCE_MAX_CHARS})`)} AS body) b
          WHERE m.idchat = c.idchat AND to_tsvector('simple', b.body) @@ q.q
          ORDER BY m.idchat, m.dtcreated LIMIT 1)
        UNION ALL
        (SELECT 'answer', b.body FROM chatbot_schema.response r
          CROSS JOIN LATERAL (SELECT ${unmarked(sql`left(r.txmarkdown, ${PASSAGE_SOURCE_MAX_CHARS})`)} AS body) b
          WHERE r.idchat = c.idchat AND r.txstatus NOT IN ('pending', 'streaming') AND to_tsvector('simple', b.body) @@ q.q
          ORDER BY r.idchat, r.idresponse LIMIT 1)
      ) x LIMIT 1
    ) p ON TRUE
    ORDER BY top.rank DESC, c.idchat DESC`.execute(db);

  return {
    kind: 'hits',
    hits: rows.rows.map((r) => ({
      id: r.id,
      title: r.title,
      updatedAt: r.updatedAt,
      rank: r.rank,
      titleParts: r.titleMarked === null ? null : passageParts(r.titleMarked),
      passage: r.source && r.passageMarked !== null ? passageOf(r.source, passageParts(r.passageMarked), r.bodyStart ?? '', r.bodyEnd ?? '') : null,
    })),
  };
}

/** ts_headline trims whitespace and cuts around the matches; the text's first and last characters say where it cut. */
function passageOf(source: 'prompt' | 'answer', parts: PassagePart[], bodyStart: string, bodyEnd: string): Passage {
  const text = passageText(parts);
  // Words only: ts_headline drops punctuation at a passage's ends ("alt text?" ends "alt text").
  const squash = (s: string) => s.replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  return {
    source,
    parts,
    cutBefore: !squash(text).startsWith(squash(bodyStart).slice(0, 12)),
    cutAfter: !squash(text).endsWith(squash(bodyEnd).slice(-12)),
  };
}
