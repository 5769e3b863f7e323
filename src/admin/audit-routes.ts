import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/guards.ts';
import type { Db } from '../db/database.ts';
import { BadRequestError } from '../http/errors.ts';
import { DB_ID_MAX } from '../http/validation.ts';
import { type AccountRef, AUDIT_ACTIONS, type AuditQuery, findAccountById, findAccounts, listAudit, suggestPeople } from './audit-queries.ts';
import { auditSentence, sentenceText } from './audit-sentences.ts';
import { type AuditFilterErrors, type AuditFilterForm, auditPage, type FilterError } from './audit-views.ts';
import { csvLine } from './csv.ts';
import { TRIGRAM_LENGTH } from './user-list-queries.ts';

/** A CSV export holds at most this many rows (newest first); the filters narrow it. */
const CSV_MAX_ROWS = 100_000;
/** An e-mail address is at most 254 characters (RFC 5321); a name is shorter. */
const NAME_FIELD_MAX_CHARS = 254;

/** `actor`/`target`: the numeric ids of links written before the name filters (bookmarks, the user page's link). */
const optionalId = (label: string) =>
  z
    .string()
    .transform((v) => v.trim())
    .pipe(z.union([z.literal(''), z.string().regex(/^[1-9]\d{0,9}$/, `${label} must be a user id.`)]))
    .transform((v) => (v === '' ? undefined : Number(v)))
    .pipe(z.number().max(DB_ID_MAX, `${label} must be a user id.`).optional())
    .optional();

const nameField = (label: string) =>
  z
    .string()
    .max(NAME_FIELD_MAX_CHARS, `${label}: enter at most ${NAME_FIELD_MAX_CHARS} characters of a name or e-mail address.`)
    .transform((v) => v.trim())
    .default('');

const auditQuerySchema = z.object({
  admin: nameField('Admin'),
  user: nameField('User'),
  actor: optionalId('actor'),
  target: optionalId('target'),
  action: z
    .union([z.literal(''), z.enum(AUDIT_ACTIONS)], { error: `action must be one of ${AUDIT_ACTIONS.join(', ')}.` })
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  page: z
    .string()
    .regex(/^[1-9]\d{0,4}$/, 'page must be a page number.')
    .transform(Number)
    .default(1),
  format: z.enum(['html', 'csv'], { error: 'format must be html or csv.' }).default('html'),
});

type ParsedQuery = z.infer<typeof auditQuerySchema>;

function parseAuditQuery(raw: unknown): ParsedQuery {
  const input = (raw ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (Array.isArray(value)) throw new BadRequestError(`The parameter ${key} must be given once.`);
  }
  const parsed = auditQuerySchema.safeParse(input);
  if (!parsed.success) throw new BadRequestError(parsed.error.issues[0]?.message ?? 'Bad query.');
  return parsed.data;
}

/**
 * The account a name field means, or the message shown beside it (with the accounts it could mean, to pick from).
 * Exact (a whole e-mail or username, any case) wins; otherwise a part of one that only one account has. Never a
 * guess between several accounts.
 */
async function resolvePerson(db: Db, text: string, id: number | undefined): Promise<{ account?: AccountRef; error?: FilterError }> {
  if (text === '') {
    if (id === undefined) return {};
    const account = await findAccountById(db, id);
    return account ? { account } : { error: { message: `No account has the id ${id}.`, candidates: [] } };
  }
  const { exact, partial, partialCount } = await findAccounts(db, text);
  if (exact.length === 1) return { account: exact[0] };
  if (exact.length > 1) return { error: { message: `“${text}” is the name of several accounts: type the e-mail address, or pick one:`, candidates: exact } };
  if (partialCount === 1) return { account: partial[0] };
  if (partialCount === 0 && text.length < TRIGRAM_LENGTH) {
    return { error: { message: `No account is named “${text}”: type at least ${TRIGRAM_LENGTH} characters of a name or e-mail address.`, candidates: [] } };
  }
  if (partialCount === 0) return { error: { message: `No account matches “${text}”. Type part of a name or e-mail address.`, candidates: [] } };
  const many = partialCount > partial.length ? `more than ${partial.length}` : String(partialCount);
  return { error: { message: `“${text}” matches ${many} accounts: type more of the name or the e-mail address, or pick one:`, candidates: partial } };
}

export async function auditRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;
  app.get('/admin/audit', async (req, reply) => {
    requireAdmin(req);
    const parsed = parseAuditQuery(req.query);
    const [admin, user] = await Promise.all([resolvePerson(db, parsed.admin, parsed.actor), resolvePerson(db, parsed.user, parsed.target)]);
    const query: AuditQuery = { actorId: admin.account?.id, targetId: user.account?.id, action: parsed.action, page: parsed.page };
    const errors: AuditFilterErrors = { admin: admin.error, user: user.error };

    if (parsed.format === 'csv') {
      const error = errors.admin ?? errors.user;
      if (error) throw new BadRequestError(`${error.message} ${error.candidates.map((c) => `${c.username} (${c.email})`).join(', ')}`.trim());
      const { rows } = await listAudit(db, { ...query, page: 1 }, CSV_MAX_ROWS);
      const lines = [csvLine(['id', 'time_utc', 'admin_id', 'admin', 'action', 'user_id', 'user', 'details', 'ip', 'summary'])];
      for (const r of rows) {
        const summary = sentenceText(auditSentence(r));
        lines.push(csvLine([r.id, r.at.toISOString(), r.actorId, r.actor, r.action, r.targetId, r.target, JSON.stringify(r.details), r.ip, summary]));
      }
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="parley-audit.csv"')
        .send(lines.join(''));
    }

    // The field shows what was typed, or (from an id link) the e-mail of the account the id means.
    const form: AuditFilterForm = { admin: parsed.admin || (admin.account?.email ?? ''), user: parsed.user || (user.account?.email ?? '') };
    const people = await suggestPeople(db);
    if (errors.admin || errors.user) {
      return reply.page({ title: 'Audit log', body: auditPage({ query, form, errors, rows: null, hasMore: false, people }) }, 400);
    }
    const { rows, hasMore } = await listAudit(db, query);
    return reply.page({ title: 'Audit log', body: auditPage({ query, form, errors, rows, hasMore, people }) });
  });
}
