import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/guards.ts';
import type { Db } from '../db/database.ts';
import { BadRequestError } from '../http/errors.ts';
import { DB_ID_MAX } from '../http/validation.ts';
import { AUDIT_ACTIONS, type AuditQuery, listAudit } from './audit-queries.ts';
import { auditPage } from './audit-views.ts';
import { csvLine } from './csv.ts';

/** A CSV export holds at most this many rows (newest first); the filters narrow it. */
const CSV_MAX_ROWS = 100_000;

const optionalId = (label: string) =>
  z
    .string()
    .transform((v) => v.trim())
    .pipe(z.union([z.literal(''), z.string().regex(/^[1-9]\d{0,9}$/, `${label} must be a user id.`)]))
    .transform((v) => (v === '' ? undefined : Number(v)))
    .pipe(z.number().max(DB_ID_MAX, `${label} must be a user id.`).optional())
    .optional();

const auditQuerySchema = z.object({
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

function parseAuditQuery(raw: unknown): AuditQuery & { format: 'html' | 'csv' } {
  const input = (raw ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (Array.isArray(value)) throw new BadRequestError(`The parameter ${key} must be given once.`);
  }
  const parsed = auditQuerySchema.safeParse(input);
  if (!parsed.success) throw new BadRequestError(parsed.error.issues[0]?.message ?? 'Bad query.');
  const { actor, target, action, page, format } = parsed.data;
  return { actorId: actor, targetId: target, action, page, format };
}

export async function auditRoutes(app: FastifyInstance, opts: { db: Db }): Promise<void> {
  const { db } = opts;
  app.get('/admin/audit', async (req, reply) => {
    requireAdmin(req);
    const { format, ...query } = parseAuditQuery(req.query);
    if (format === 'csv') {
      const { rows } = await listAudit(db, { ...query, page: 1 }, CSV_MAX_ROWS);
      const lines = [csvLine(['id', 'time_utc', 'admin_id', 'admin', 'action', 'user_id', 'user', 'details', 'ip'])];
      for (const r of rows)
        lines.push(csvLine([r.id, r.at.toISOString(), r.actorId, r.actor, r.action, r.targetId, r.target, JSON.stringify(r.details), r.ip]));
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="parley-audit.csv"')
        .send(lines.join(''));
    }
    const { rows, hasMore } = await listAudit(db, query);
    return reply.page({ title: 'Audit log', body: auditPage({ query, rows, hasMore, actions: [...AUDIT_ACTIONS] }) });
  });
}
