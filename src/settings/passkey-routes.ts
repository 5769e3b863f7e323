import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireRecentProof, requireUser } from '../auth/guards.ts';
import { registrationOptions, verifyRegistration } from '../auth/passkey-ceremonies.ts';
import { issueChallenge, takeChallenge } from '../auth/passkey-challenges.ts';
import { parseCredentialForm, registrationFormSchema } from '../auth/passkey-form.ts';
import {
  addPasskey,
  countPasskeys,
  credentialsOf,
  listPasskeys,
  PASSKEY_NAME_MAX_CHARS,
  PASSKEYS_PER_ACCOUNT,
  removePasskey,
  renamePasskey,
  userHandleOf,
} from '../auth/passkey-queries.ts';
import { type SessionUser, STEP_UP_WINDOW_MS } from '../auth/sessions.ts';
import { readTotpState } from '../auth/totp-queries.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { bidiProblem } from '../http/display-name.ts';
import { BadRequestError, NotFoundError } from '../http/errors.ts';
import { formString, parseBody, pathId } from '../http/validation.ts';
import { assetUrl } from '../views/assets.ts';
import { passkeysPage } from './passkey-views.ts';

export const PASSKEYS_PATH = '/settings/passkeys';

const nameSchema = z.object({
  passkey_name: formString(PASSKEY_NAME_MAX_CHARS, 'Name')
    .transform((v) => v.trim())
    .pipe(z.string().min(1, 'Give the passkey a name.'))
    .superRefine((v, ctx) => {
      const problem = bidiProblem(v, 'Name');
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
});

/**
 * Settings → Passkeys. Adding one (options and the registration) and removing one need a recent proof (step-up,
 * decision record 011): a stolen session must not plant its own passkey, nor remove the owner's. Renaming does not.
 */
export async function passkeySettingsRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const rp = config.relyingParty;

  const show = async (req: FastifyRequest, reply: FastifyReply, user: SessionUser, status = 200, extra: { nameError?: string; name?: string } = {}) => {
    const [passkeys, totp] = await Promise.all([listPasskeys(db, user.userId), readTotpState(db, user.userId)]);
    return reply.page(
      {
        title: 'Passkeys',
        scripts: [assetUrl('passkeys')],
        body: passkeysPage({
          csrfToken: req.csrfToken(),
          relyingParty: rp,
          passkeys,
          totpEnabled: Boolean(totp?.enabled),
          stepUpMinutes: user.hasRecentProof ? undefined : STEP_UP_WINDOW_MS / 60_000,
          ...extra,
        }),
      },
      status,
    );
  };

  app.get(PASSKEYS_PATH, async (req, reply) => show(req, reply, requireUser(req)));

  app.post(`${PASSKEYS_PATH}/options`, async (req, reply) => {
    const user = requireRecentProof(req, PASSKEYS_PATH);
    if ((await countPasskeys(db, user.userId)) >= PASSKEYS_PER_ACCOUNT)
      throw new BadRequestError(`You have ${PASSKEYS_PER_ACCOUNT} passkeys, the most an account may have. Remove one to add another.`);
    const [handle, exclude] = await Promise.all([userHandleOf(db, user.userId), credentialsOf(db, user.userId)]);
    const options = await registrationOptions(rp, config.APP_NAME, { handle, email: user.email, username: user.username }, exclude);
    await issueChallenge(db, req.csrfBinding, 'register', options.challenge, user.userId);
    return reply.header('cache-control', 'no-store').send(options);
  });

  app.post(PASSKEYS_PATH, async (req, reply) => {
    const user = requireRecentProof(req, PASSKEYS_PATH);
    const named = parseBody(nameSchema, req.body);
    if (!named.ok) return show(req, reply, user, 400, { nameError: named.errors.passkey_name });
    const { credential } = parseCredentialForm(registrationFormSchema, req.body);
    const name = named.data.passkey_name;
    const challenge = await takeChallenge(db, req.csrfBinding, 'register');
    if (!challenge || challenge.userId !== user.userId) {
      reply.flash('danger', 'That passkey request expired or was already used. Try again.');
      return reply.redirect(PASSKEYS_PATH, 303);
    }
    const verified = await verifyRegistration(rp, credential, challenge.challenge);
    if (!verified.ok) {
      reply.flash('danger', verified.message);
      return reply.redirect(PASSKEYS_PATH, 303);
    }
    const outcome = await addPasskey(db, user.userId, { ...verified.passkey, name });
    if (outcome === 'added') reply.flash('success', `Passkey “${name}” added. You can sign in with it now.`);
    else if (outcome === 'duplicate') reply.flash('danger', 'This passkey is registered already.');
    else reply.flash('danger', `You have ${PASSKEYS_PER_ACCOUNT} passkeys, the most an account may have. Remove one to add another.`);
    return reply.redirect(PASSKEYS_PATH, 303);
  });

  app.post(`${PASSKEYS_PATH}/:id/rename`, async (req, reply) => {
    const user = requireUser(req);
    const id = pathId(req.params, 'id', 'You have no such passkey.');
    const form = parseBody(nameSchema, req.body);
    if (!form.ok) {
      reply.flash('danger', form.errors.passkey_name ?? 'Give the passkey a name.');
      return reply.redirect(PASSKEYS_PATH, 303);
    }
    if (!(await renamePasskey(db, user.userId, id, form.data.passkey_name))) throw new NotFoundError('You have no such passkey.');
    reply.flash('success', `Passkey renamed to “${form.data.passkey_name}”.`);
    return reply.redirect(PASSKEYS_PATH, 303);
  });

  app.post(`${PASSKEYS_PATH}/:id/remove`, async (req, reply) => {
    const user = requireRecentProof(req, PASSKEYS_PATH);
    const id = pathId(req.params, 'id', 'You have no such passkey.');
    const name = await removePasskey(db, user.userId, id);
    if (name === undefined) throw new NotFoundError('You have no such passkey.');
    reply.flash('success', `Passkey “${name}” removed: it no longer signs you in.`);
    return reply.redirect(PASSKEYS_PATH, 303);
  });
}
