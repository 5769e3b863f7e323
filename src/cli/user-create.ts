import { parseArgs } from 'node:util';
import { z } from 'zod';
import { hashPassword, passwordProblem } from '../auth/passwords.ts';
import type { Db } from '../db/database.ts';
import { displayNameField } from '../http/display-name.ts';
import { createUser, EmailTakenError, grantAdmin, normalizeEmail } from '../users/user-queries.ts';
import { CliError, type CliOutput, consoleOutput, runCli, withDatabase } from './cli-runtime.ts';
import { readNewPassword } from './read-password.ts';

const USAGE = 'Usage: npm run user:create -- --email <address> [--username <name>] [--admin]   (the password is asked for, or read from stdin)';

// The same limits as the registration form (src/auth/local-routes.ts), so the CLI cannot create what the form refuses.
const argsSchema = z.object({
  email: z.string({ message: '--email is required' }).trim().max(254, 'the e-mail address is too long').pipe(z.email('--email is not a valid e-mail address')),
  username: displayNameField('--username', '--username is empty').optional(),
  admin: z.boolean(),
});

export interface CreateUserArgs {
  email: string;
  username: string;
  admin: boolean;
}

/** Parses the command line; `null` means --help was asked for. */
export function parseCreateUserArgs(argv: string[]): CreateUserArgs | null {
  let values: { email?: string; username?: string; admin?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { email: { type: 'string' }, username: { type: 'string' }, admin: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) return null;
  const parsed = argsSchema.safeParse({ email: values.email, username: values.username, admin: values.admin ?? false });
  if (!parsed.success) throw new CliError(`${parsed.error.issues[0]?.message ?? 'invalid arguments'}\n${USAGE}`);
  const email = normalizeEmail(parsed.data.email);
  // Without --username, the name shown in the navbar is the e-mail's local part, as a person would pick.
  return { email, username: parsed.data.username ?? email.split('@')[0] ?? email, admin: parsed.data.admin };
}

/** Creates the account through the same query as registration: the first account ever is Admin either way. */
export async function createUserCommand(
  db: Db,
  args: CreateUserArgs,
  password: string,
  out: CliOutput = consoleOutput,
): Promise<{ id: number; isAdmin: boolean }> {
  const problem = passwordProblem(password);
  if (problem) throw new CliError(`Password refused: ${problem}`);
  let created: { id: number; isAdmin: boolean };
  try {
    created = await createUser(db, { username: args.username, email: args.email, passwordHash: await hashPassword(password) });
  } catch (err) {
    if (err instanceof EmailTakenError) throw new CliError(`An account with the e-mail address ${args.email} already exists.`);
    throw err;
  }
  if (args.admin && !created.isAdmin) {
    await grantAdmin(db, created.id);
    created = { ...created, isAdmin: true };
  }
  out.info(`Created ${created.isAdmin ? 'administrator' : 'user'} "${args.username}" <${args.email}> (id ${created.id}).`);
  return created;
}

if (import.meta.main) {
  await runCli(async () => {
    const args = parseCreateUserArgs(process.argv.slice(2));
    if (!args) return consoleOutput.info(USAGE);
    const password = await readNewPassword();
    await withDatabase(({ db }) => createUserCommand(db, args, password), { migrate: true });
  });
}
