import { commandLineAuthor, writeAudit } from '../admin/audit-queries.ts';
import { resetTwoFactor } from '../auth/totp-queries.ts';
import type { Db } from '../db/database.ts';
import { findUserByEmail } from '../users/user-queries.ts';
import { CliError, type CliOutput, consoleOutput, parseEmailArgs, runCli, withDatabase } from './cli-runtime.ts';

const USAGE = 'Usage: npm run user:reset-2fa -- --email <address>';

/** Who the audit log names for a reset made here: no account, the machine's operator. */
export const CLI_ACTOR = commandLineAuthor('user:reset-2fa');

/** Parses the command line; `null` means --help was asked for. */
export const parseResetArgs = (argv: string[]) => parseEmailArgs(argv, USAGE);

/**
 * The way back in for an admin who lost their authenticator on their own instance (no other admin to ask):
 * turns 2FA off, removes the passkeys, and signs the account out everywhere, since a session opened with the lost device must not survive.
 */
export async function resetTwoFactorCommand(db: Db, email: string, out: CliOutput = consoleOutput): Promise<void> {
  const user = await findUserByEmail(db, email);
  if (!user) throw new CliError(`No account has the e-mail address ${email}.`);
  // The same reset as the admin user page: secret, pending enrolment, recovery codes and every session gone.
  // Audited as the admin page's reset is, after it (a row never claims a reset that did not happen).
  await resetTwoFactor(db, user.id);
  await writeAudit(db, CLI_ACTOR, 'reset-2fa', [{ id: user.id, username: user.username }], {});
  const had = [user.is2faEnabled && 'their authenticator app', user.hasPasskey && 'their passkeys'].filter(Boolean).join(' and ');
  out.info(
    had
      ? `Two-factor authentication is now off for ${user.email} (${had} removed); all their sessions were ended. They sign in with their password and can enrol again under Settings.`
      : `${user.email} did not have two-factor authentication on; any pending setup was removed and all their sessions were ended.`,
  );
}

if (import.meta.main) {
  await runCli(async () => {
    const args = parseResetArgs(process.argv.slice(2));
    if (!args) return consoleOutput.info(USAGE);
    await withDatabase(({ db }) => resetTwoFactorCommand(db, args.email), { migrate: true });
  });
}
