import type { CatchUpJob } from '../db/catch-up.ts';
import { backfillUsageStep, usageBackfillPercent } from '../db/migrations/011-usage-rollups.ts';

/**
 * The usage rollups' backfill (migration 011: an adopted or upgraded database, a new STATS_TIMEZONE) as a catch-up
 * job. Its batches lock the backfill's state row, so processes take turns and no chat is counted twice.
 */
export function usageBackfillJob(): CatchUpJob {
  return {
    name: 'counting usage statistics',
    percent: usageBackfillPercent,
    // backfillUsageStep says whether anything is left after its batch; a step here says whether it did a batch.
    step: async (db) => {
      if ((await usageBackfillPercent(db)) === null) return false;
      await backfillUsageStep(db);
      return true;
    },
  };
}
