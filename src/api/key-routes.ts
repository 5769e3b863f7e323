import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireRecentProof, requireUser } from '../auth/guards.ts';
import type { SessionUser } from '../auth/sessions.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { formString, parseBody, parseJsonOrThrow, pathId } from '../http/validation.ts';
import { createApiKey, KEY_EXPIRY_MAX_DAYS, KEY_NAME_MAX_CHARS, listApiKeys, revokeApiKey } from './api-key-queries.ts';
import { apiKeysPage } from './api-key-views.ts';

export const API_KEYS_PATH = '/settings/api-keys';

const name = formString(KEY_NAME_MAX_CHARS, 'Name')
  .transform((v) => v.trim())
  .refine((v) => v.length > 0, 'Give the key a name.');
const days = z.number().int().min(1, `Between 1 and ${KEY_EXPIRY_MAX_DAYS} days.`).max(KEY_EXPIRY_MAX_DAYS, `Between 1 and ${KEY_EXPIRY_MAX_DAYS} days.`);

/** The form: an empty expiry is a key that never expires. */
const formSchema = z.object({
  name,
  expires_in_days: z
    .string()
    .trim()
    .regex(/^\d{0,4}$/, 'A whole number of days, or empty.')
    .default('')
    .transform((v) => (v === '' ? null : Number(v)))
    .pipe(days.nullable()),
});

const jsonSchema = z.strictObject({ name, expires_in_days: days.nullable().optional() });

/**
 * One's own API keys: the page and its forms, and the JSON routes (PRODUCT.md). Creating a key needs a recent proof
 * (step-up, decision record 011) on top of a complete session (which, for an account with 2FA, passed its second
 * factor): a stolen cookie alone cannot mint a long-lived credential. Revoking needs only the session.
 */
export async function apiKeyRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const author = (req: FastifyRequest, user: SessionUser) => ({ id: user.userId, username: user.username, ip: req.ip });
  const owner = (user: SessionUser) => ({ id: user.userId, username: user.username });

  const show = async (req: FastifyRequest, reply: FastifyReply, user: SessionUser, extra: Partial<Parameters<typeof apiKeysPage>[0]> = {}, status = 200) =>
    reply.page(
      {
        title: 'API keys',
        body: apiKeysPage({ csrfToken: req.csrfToken(), keys: await listApiKeys(db, user.userId), publicUrl: config.PUBLIC_URL, ...extra }),
      },
      status,
    );

  app.get(API_KEYS_PATH, async (req, reply) => show(req, reply, requireUser(req)));

  app.post(API_KEYS_PATH, async (req, reply) => {
    const user = requireRecentProof(req, API_KEYS_PATH);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const parsed = parseBody(formSchema, body);
    const form = {
      name: typeof body.name === 'string' ? body.name : '',
      expires_in_days: typeof body.expires_in_days === 'string' ? body.expires_in_days : '',
    };
    if (!parsed.ok) return show(req, reply, user, { errors: parsed.errors, form }, 400);
    const created = await createApiKey(db, author(req, user), owner(user), { name: parsed.data.name, expiresInDays: parsed.data.expires_in_days });
    // The key is in this page only: no redirect, no flash cookie carrying it.
    return show(req, reply, user, { created: { key: created.key, name: parsed.data.name } }, 201);
  });

  app.post(`${API_KEYS_PATH}/:id/revoke`, async (req, reply) => {
    const user = requireUser(req);
    const revoked = await revokeApiKey(db, author(req, user), owner(user), pathId(req.params));
    reply.flash(
      revoked ? 'success' : 'danger',
      revoked ? 'The key is revoked: calls with it are refused from now on.' : 'That key is not yours or is revoked already.',
    );
    return reply.redirect(API_KEYS_PATH, 303);
  });

  app.get('/api/keys', async (req) => {
    const user = requireUser(req);
    const keys = await listApiKeys(db, user.userId);
    return keys.map((k) => ({
      id: k.id,
      name: k.name,
      prefix: k.prefix,
      created_at: k.createdAt,
      expires_at: k.expiresAt,
      revoked_at: k.revokedAt,
      last_used_at: k.lastUsedAt,
      requests: k.requests,
    }));
  });

  app.post('/api/keys', async (req, reply) => {
    const user = requireRecentProof(req, API_KEYS_PATH);
    const input = parseJsonOrThrow(jsonSchema, req.body);
    const created = await createApiKey(db, author(req, user), owner(user), { name: input.name, expiresInDays: input.expires_in_days ?? null });
    return reply.code(201).send({ id: created.id, key: created.key, prefix: created.prefix });
  });

  app.delete('/api/keys/:id', async (req, reply) => {
    const user = requireUser(req);
    if (!(await revokeApiKey(db, author(req, user), owner(user), pathId(req.params))))
      throw new NotFoundError('No such key of yours (or it is revoked already).');
    return reply.code(204).send();
  });
}
