import { commandLineAuthor } from '../admin/audit-queries.ts';
import { createResetLink, RESET_LINK_TTL_MS } from '../admin/user-detail-queries.ts';
import { loadConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import { findUserByEmail } from '../users/user-queries.ts';
import { CliError, type CliOutput, consoleOutput, parseEmailArgs, runCli, withDatabase } from './cli-runtime.ts';

const USAGE = 'Usage: npm run user:reset-password -- --email <address>';

/** Who the audit log names for a link made here: no account, the machine's operator. */
export const CLI_ACTOR = commandLineAuthor('user:reset-password');

/** Parses the command line; `null` means --help was asked for. */
export const parseResetPasswordArgs = (argv: string[]) => parseEmailArgs(argv, USAGE);

/**
 * The way back for a forgotten password without an admin at hand (or for the only admin): the same one-time link an
 * admin creates on the user's page (user-detail-queries.ts: stored hashed, works once within the hour, replaces any
 * earlier one, audited), printed for whoever runs the server to hand over. There is no e-mail sending.
 */
export async function resetPasswordCommand(db: Db, publicUrl: string, email: string, out: CliOutput = consoleOutput): Promise<string> {
  const user = await findUserByEmail(db, email);
  if (!user) throw new CliError(`No account has the e-mail address ${email}.`);
  if (!user.isActive)
    throw new CliError(
      `${user.email} is deactivated: reactivate it first (Users → the account → Reactivate); a reset link does not open a deactivated account.`,
    );
  const token = await createResetLink(db, CLI_ACTOR, user.id);
  const link = `${publicUrl.replace(/\/+$/, '')}/reset-password/${token}`;
  out.info(
    `A one-time link to set a new password for ${user.email}: it works once, within ${RESET_LINK_TTL_MS / 60_000} minutes, and replaces any earlier link.`,
  );
  out.info(link);
  if (['localhost', '127.0.0.1', '[::1]'].includes(new URL(publicUrl).hostname)) {
    out.info(`PUBLIC_URL is ${publicUrl}: this link opens only on this machine. Set PUBLIC_URL to the address people use.`);
  }
  return link;
}

if (import.meta.main) {
  await runCli(async () => {
    const args = parseResetPasswordArgs(process.argv.slice(2));
    if (!args) return consoleOutput.info(USAGE);
    const { PUBLIC_URL } = loadConfig();
    await withDatabase(({ db }) => resetPasswordCommand(db, PUBLIC_URL, args.email).then(() => undefined), { migrate: true });
  });
}
