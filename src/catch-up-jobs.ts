import { adoptedAnswersJob } from './chat/adopted-answers.ts';
import { searchBackfillJob } from './chat/search-backfill.ts';
import type { CatchUpJob } from './db/catch-up.ts';
import { deferredIndexesJob } from './db/deferred-indexes.ts';
import { usageBackfillJob } from './stats/usage-backfill-job.ts';

/**
 * Every catch-up job (src/db/catch-up.ts), in the order one process runs them: the indexes on message and response
 * first (seconds; the other two jobs' batches use them), the statistics next (a minute or
 * two for a million messages; the page says it is still counting), the search rows of older chats (minutes; search
 * finds the chats reached so far), then the adopted answers (a quarter of an hour
 * for a million, but pages render those on read meanwhile). The server runs them after it listens (src/app.ts);
 * `npm run migrate -- --catch-up` runs them to the end.
 */
export function catchUpJobs(): CatchUpJob[] {
  return [deferredIndexesJob(), usageBackfillJob(), searchBackfillJob(), adoptedAnswersJob()];
}
