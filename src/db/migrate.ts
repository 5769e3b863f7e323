import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import type { Db } from './database.ts';
import * as foundation from './migrations/001-foundation.ts';
import * as generationControl from './migrations/002-generation-control.ts';
import * as startAnswerFunction from './migrations/003-start-answer-function.ts';
import * as beginAnswerFunction from './migrations/004-begin-answer-function.ts';
import * as signInState from './migrations/005-sign-in-state.ts';
import * as answerOwners from './migrations/006-answer-owners.ts';
import * as untrustedPrototypeHtml from './migrations/007-untrusted-prototype-html.ts';
import * as googleIdentities from './migrations/008-google-identities.ts';
import * as totp from './migrations/009-totp.ts';
import * as adminUsers from './migrations/010-admin-users.ts';
import * as usageRollups from './migrations/011-usage-rollups.ts';
import * as embeddedSearchIndexes from './migrations/012-embedded-search-indexes.ts';
import * as modelHealth from './migrations/013-model-health.ts';
import * as sessionProof from './migrations/014-session-proof.ts';
import * as auditNameSearch from './migrations/016-audit-name-search.ts';
import * as usageFailedTiming from './migrations/017-usage-failed-timing.ts';
import * as catchUp from './migrations/018-catch-up.ts';
import * as apiKeys from './migrations/019-api-keys.ts';
import * as groupsAndLimits from './migrations/020-groups-and-limits.ts';
import * as passkeys from './migrations/021-passkeys.ts';
import * as chatModelSwitch from './migrations/023-chat-model-switch.ts';
import * as apiUsageLimits from './migrations/024-api-usage-limits.ts';
import * as settleBeforeRollups from './migrations/025-settle-before-rollups.ts';
import * as chatPrompts from './migrations/026-chat-prompts.ts';
import * as attachments from './migrations/027-attachments.ts';
import * as chatSearch from './migrations/028-chat-search.ts';
import * as importedChats from './migrations/029-imported-chats.ts';
import * as rollupSlots from './migrations/030-rollup-slots.ts';
import * as countersOnlyUnderLimits from './migrations/031-counters-only-under-limits.ts';
import * as plannedOnceFunctions from './migrations/032-planned-once-functions.ts';
import * as apiCallsFoldedWhenFinal from './migrations/033-api-calls-folded-when-final.ts';

/** The migration that creates Parley's schema: applied by a start means Parley never ran on this database before. */
export const FOUNDATION_MIGRATION = '001-foundation';

// Listed in code (not read from a folder) so that the order is explicit and nothing is loaded by path.
const migrations: Record<string, Migration> = {
  [FOUNDATION_MIGRATION]: foundation,
  '002-generation-control': generationControl,
  '003-start-answer-function': startAnswerFunction,
  '004-begin-answer-function': beginAnswerFunction,
  '005-sign-in-state': signInState,
  '006-answer-owners': answerOwners,
  '007-untrusted-prototype-html': untrustedPrototypeHtml,
  '008-google-identities': googleIdentities,
  '009-totp': totp,
  '010-admin-users': adminUsers,
  '011-usage-rollups': usageRollups,
  '012-embedded-search-indexes': embeddedSearchIndexes,
  '013-model-health': modelHealth,
  '014-session-proof': sessionProof,
  '016-audit-name-search': auditNameSearch,
  '017-usage-failed-timing': usageFailedTiming,
  '018-catch-up': catchUp,
  '019-api-keys': apiKeys,
  '020-groups-and-limits': groupsAndLimits,
  '021-passkeys': passkeys,
  '023-chat-model-switch': chatModelSwitch,
  '024-api-usage-limits': apiUsageLimits,
  '025-settle-before-rollups': settleBeforeRollups,
  '026-chat-prompts': chatPrompts,
  '027-attachments': attachments,
  '028-chat-search': chatSearch,
  '029-imported-chats': importedChats,
  '030-rollup-slots': rollupSlots,
  '031-counters-only-under-limits': countersOnlyUnderLimits,
  '032-planned-once-functions': plannedOnceFunctions,
  '033-api-calls-folded-when-final': apiCallsFoldedWhenFinal,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings chatbot_schema's schema up to date. Safe to run from several processes at once: Kysely takes a lock. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: 'chatbot_schema',
    migrationTableName: 'parley_migration',
    migrationLockTableName: 'parley_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  // Rows written before a migration (an adopted database's answers, the usage rollups) are brought up to date by
  // catch-up jobs after the server listens, not here (src/db/catch-up.ts, decision record 013).
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
