import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { getModelAccess, listGroups, setModelAccess } from '../groups/group-queries.ts';
import { bidiProblem } from '../http/display-name.ts';
import { NotFoundError } from '../http/errors.ts';
import { formString, parseBody, pathId } from '../http/validation.ts';
import {
  ApiKeyUnreadableError,
  createApiKeyBox,
  createModel,
  deleteModel,
  findModelSummary,
  getModelConnection,
  isModelNameTaken,
  isSameOrigin,
  listModelSummaries,
  type ModelSummary,
  recordTestResult,
  setDefaultModel,
  setModelEnabled,
  updateModel,
} from '../llm/llm-queries.ts';
import { listModels, ModelError } from '../llm/model-client.ts';
import { systemPromptSchema } from '../llm/system-prompt.ts';
import { html } from '../views/html.ts';
import { actorOf } from './action-replies.ts';
import { writeAudit } from './audit-queries.ts';
import { modelAccessCard } from './model-access-views.ts';
import { editModelPage, type FieldErrors, type ModelFormValues, modelsPage } from './models-views.ts';

/** "Test connection" waits this long: an admin is looking at a spinner, and a healthy server answers /models at once. */
const TEST_CONNECTION_TIMEOUT_MS = 5_000;
const MODEL_GONE = 'This model no longer exists: another admin may have deleted it.';
/** Flash messages are capped at 500 characters (http/flash.ts); a server may offer hundreds of models. */
const MODEL_LIST_MAX_CHARS = 300;

/**
 * Only http(s), and no credentials in the URL (they would be shown on the page; the key has its own field).
 * No SSRF filter beyond that, on purpose: admins are trusted, and pointing Parley at a server on localhost or the
 * internal network (Ollama, vLLM) is the main use case. Non-admins can never choose where requests go.
 */
function baseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'Enter an absolute URL, like http://localhost:11434/v1.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'Use an http:// or https:// URL.';
  if (url.username || url.password) return 'Put the API key in its own field, not in the URL.';
  return undefined;
}

const trimmed = (max: number, label: string, emptyMessage: string) =>
  formString(max, label)
    .transform((v) => v.trim())
    .pipe(z.string().min(1, emptyMessage));

const accessSchema = z.object({
  access: z.enum(['everyone', 'groups'], { error: 'Choose Everyone or the members of some groups.' }),
  group_ids: z
    .union([z.string(), z.array(z.string()).max(1000)], { error: 'The groups must be given as group ids.' })
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]))
    .pipe(
      z.array(
        z
          .string()
          .regex(/^[1-9]\d{0,9}$/, 'A group id is not valid.')
          .transform(Number),
      ),
    ),
});

const checkbox = z
  .string()
  .optional()
  .transform((v) => v !== undefined);

const modelFormSchema = z.object({
  name: trimmed(100, 'Name', 'Enter a name.').superRefine((v, ctx) => {
    // Every user picks from these names: one must not be made to read as another.
    const problem = bidiProblem(v, 'Name');
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  baseUrl: trimmed(2000, 'Base URL', 'Enter the base URL.')
    .transform((v) => v.replace(/\/+$/, ''))
    .superRefine((v, ctx) => {
      const problem = baseUrlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  model: trimmed(200, 'Model id', 'Enter the model id.'),
  apiKey: formString(1000, 'API key')
    .optional()
    .transform((v) => v?.trim() || undefined),
  enabled: checkbox,
  vision: checkbox,
  removeApiKey: checkbox,
  system_prompt: systemPromptSchema('The system prompt').optional(),
});

function parseId(req: FastifyRequest): number {
  return pathId(req.params, 'id', 'This model does not exist.');
}

/** What the admin typed, to fill the form again after an error (never the API key). */
function typedValues(body: unknown): ModelFormValues {
  const raw = (body ?? {}) as Record<string, unknown>;
  const text = (k: string) => (typeof raw[k] === 'string' ? raw[k] : '');
  return {
    name: text('name'),
    baseUrl: text('baseUrl'),
    model: text('model'),
    enabled: raw.enabled !== undefined,
    vision: raw.vision !== undefined,
    systemPrompt: text('system_prompt'),
  };
}

/** The edit form filled with what is stored. */
function editValuesOf(model: ModelSummary): ModelFormValues {
  return {
    name: model.name,
    baseUrl: model.baseUrl ?? '',
    model: model.model ?? '',
    enabled: model.enabled,
    vision: model.vision,
    systemPrompt: model.systemPrompt ?? '',
  };
}

function describeModels(ids: string[]): string {
  let list = '';
  let shown = 0;
  for (const id of ids) {
    if (list.length + id.length > MODEL_LIST_MAX_CHARS) break;
    list += `${shown > 0 ? ', ' : ''}${id}`;
    shown++;
  }
  const more = ids.length - shown;
  return `${list}${more > 0 ? ` and ${more} more` : ''}`;
}

export async function modelsAdminRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db } = opts;
  const box = createApiKeyBox(opts.config.APP_SECRET);

  const showList = async (req: FastifyRequest, reply: FastifyReply, status = 200, values?: ModelFormValues, errors?: FieldErrors, problem?: string) =>
    reply.page({ title: 'Models', body: modelsPage({ csrfToken: req.csrfToken(), models: await listModelSummaries(db), values, errors, problem }) }, status);

  /**
   * A row action or a saved edit whose model is gone (another admin deleted it meanwhile): the list again, 404, saying
   * so, rather than a dead-end error page. An edit's typed values fill the add form, so nothing typed is lost.
   */
  const showGone = (req: FastifyRequest, reply: FastifyReply, typed?: ModelFormValues) =>
    showList(
      req,
      reply,
      404,
      typed,
      undefined,
      typed ? `${MODEL_GONE} What you typed is in the form below: add it as a new model if you want it.` : MODEL_GONE,
    );

  const showEdit = async (
    req: FastifyRequest,
    reply: FastifyReply,
    model: ModelSummary,
    values: ModelFormValues,
    status = 200,
    errors?: FieldErrors,
    accessError?: string,
  ) => {
    const [access, groups] = await Promise.all([getModelAccess(db, model.id), listGroups(db)]);
    const accessCard = modelAccessCard({ csrfToken: req.csrfToken(), modelId: model.id, ...access, groups, error: accessError });
    return reply.page(
      { title: `Edit ${model.name}`, body: html`${editModelPage({ csrfToken: req.csrfToken(), model, values, errors })}${accessCard}` },
      status,
    );
  };

  const findOr404 = async (id: number) => {
    const model = await findModelSummary(db, id);
    if (!model) throw new NotFoundError('This model does not exist.');
    return model;
  };

  const back = (reply: FastifyReply) => reply.redirect('/admin/models', 303);

  app.get('/admin/models', async (req, reply) => {
    requireAdmin(req);
    return showList(req, reply);
  });

  app.post('/admin/models', async (req, reply) => {
    const admin = requireAdmin(req);
    const form = parseBody(modelFormSchema, req.body);
    if (!form.ok) return showList(req, reply, 400, typedValues(req.body), form.errors);
    const { name, baseUrl, model, apiKey, enabled, vision, system_prompt: systemPrompt } = form.data;
    if (await isModelNameTaken(db, name)) return showList(req, reply, 400, typedValues(req.body), { name: 'Another model already has this name.' });
    // The model and its audit row commit together (createModel takes the transaction).
    await db.transaction().execute(async (trx) => {
      const id = await createModel(trx, box, { name, baseUrl, model, enabled, vision, systemPrompt, apiKey: apiKey ?? null });
      const prompt = systemPrompt ? 'set' : 'none';
      await writeAudit(trx, actorOf(req, admin), 'create-model', null, {
        id,
        name,
        baseUrl,
        model,
        enabled,
        vision,
        systemPrompt: prompt,
        apiKey: apiKey ? 'set' : 'none',
      });
    });
    reply.flash('success', `Model “${name}” added.`);
    return back(reply);
  });

  app.get('/admin/models/:id/edit', async (req, reply) => {
    requireAdmin(req);
    const model = await findOr404(parseId(req));
    return showEdit(req, reply, model, editValuesOf(model));
  });

  app.post('/admin/models/:id', async (req, reply) => {
    const admin = requireAdmin(req);
    const existing = await findModelSummary(db, parseId(req));
    if (!existing) return showGone(req, reply, typedValues(req.body));
    const form = parseBody(modelFormSchema, req.body);
    if (!form.ok) return showEdit(req, reply, existing, typedValues(req.body), 400, form.errors);
    const { name, baseUrl, model, apiKey, enabled, vision, removeApiKey, system_prompt: systemPrompt } = form.data;
    if (await isModelNameTaken(db, name, existing.id)) {
      return showEdit(req, reply, existing, typedValues(req.body), 400, { name: 'Another model already has this name.' });
    }
    // A new key replaces the stored one; an empty field keeps it unless "remove" is ticked or the server changes
    // (updateModel drops it then; the check here only words the notice).
    const keyChange = apiKey ?? (removeApiKey ? null : undefined);
    const updated = await updateModel(db, box, existing.id, { name, baseUrl, model, enabled, vision, systemPrompt, apiKey: keyChange });
    if (!updated) return showGone(req, reply, typedValues(req.body));
    // updateModel runs its own transaction, so the audit row follows the committed change (it never claims one that failed).
    await writeAudit(db, actorOf(req, admin), 'update-model', null, {
      id: existing.id,
      name,
      baseUrl,
      model,
      enabled,
      vision,
      systemPrompt: systemPrompt === undefined || systemPrompt === existing.systemPrompt ? 'kept' : systemPrompt ? 'changed' : 'removed',
      apiKey: keyChange === undefined ? 'kept' : keyChange === null ? 'removed' : 'replaced',
    });
    reply.flash('success', `Model “${name}” saved.`);
    if (existing.hasApiKey && keyChange === undefined && !isSameOrigin(existing.baseUrl, baseUrl)) {
      reply.flash('warning', 'The stored API key was removed because the server changed. If the new server needs a key, edit the model and enter it.');
    }
    return back(reply);
  });

  app.post('/admin/models/:id/access', async (req, reply) => {
    const admin = requireAdmin(req);
    const model = await findModelSummary(db, parseId(req));
    if (!model) return showGone(req, reply);
    const editValues = editValuesOf(model);
    const form = parseBody(accessSchema, req.body);
    if (!form.ok) return showEdit(req, reply, model, editValues, 400, undefined, Object.values(form.errors)[0]);
    const restricted = form.data.access === 'groups';
    const groups = (await listGroups(db)).filter((g) => form.data.group_ids.includes(g.id));
    if (restricted && groups.length === 0) return showEdit(req, reply, model, editValues, 400, undefined, 'Tick at least one group, or choose Everyone.');
    await db.transaction().execute(async (trx) => {
      await setModelAccess(trx, model.id, { restricted, groupIds: groups.map((g) => g.id) });
      const details = { id: model.id, name: model.name, ...(restricted ? { groups: groups.map((g) => `“${g.name}”`).join(', ') } : {}) };
      await writeAudit(trx, actorOf(req, admin), 'model-access', null, details);
    });
    reply.flash(
      'success',
      restricted ? `“${model.name}” is for the members of ${groups.map((g) => `“${g.name}”`).join(', ')} only.` : `“${model.name}” is for everyone.`,
    );
    return reply.redirect(`/admin/models/${model.id}/edit#access`, 303);
  });

  app.post('/admin/models/:id/enable', async (req, reply) => {
    const admin = requireAdmin(req);
    const model = await findModelSummary(db, parseId(req));
    if (!model) return showGone(req, reply);
    if (model.baseUrl === null) return showList(req, reply, 409, undefined, undefined, `“${model.name}” has no base URL yet: edit it and set one first.`);
    await db.transaction().execute(async (trx) => {
      await setModelEnabled(trx, model.id, true);
      await writeAudit(trx, actorOf(req, admin), 'enable-model', null, { id: model.id, name: model.name });
    });
    reply.flash('success', `“${model.name}” is enabled: users can pick it.`);
    return back(reply);
  });

  app.post('/admin/models/:id/disable', async (req, reply) => {
    const admin = requireAdmin(req);
    const model = await findModelSummary(db, parseId(req));
    if (!model) return showGone(req, reply);
    await db.transaction().execute(async (trx) => {
      await setModelEnabled(trx, model.id, false);
      await writeAudit(trx, actorOf(req, admin), 'disable-model', null, { id: model.id, name: model.name });
    });
    reply.flash('success', `“${model.name}” is disabled: users can no longer pick it, and existing chats stay readable.`);
    return back(reply);
  });

  app.post('/admin/models/:id/default', async (req, reply) => {
    const admin = requireAdmin(req);
    const model = await findModelSummary(db, parseId(req));
    if (!model) return showGone(req, reply);
    if (!model.enabled || model.baseUrl === null) {
      return showList(req, reply, 409, undefined, undefined, `“${model.name}” is not enabled: enable it before making it the default.`);
    }
    const found = await db.transaction().execute(async (trx) => {
      if (!(await setDefaultModel(trx, model.id))) return false;
      await writeAudit(trx, actorOf(req, admin), 'default-model', null, { id: model.id, name: model.name });
      return true;
    });
    if (!found) return showGone(req, reply);
    reply.flash('success', `“${model.name}” is the default: new chats start with it unless a user last used another model.`);
    return back(reply);
  });

  app.post('/admin/models/:id/delete', async (req, reply) => {
    const admin = requireAdmin(req);
    const model = await findModelSummary(db, parseId(req));
    if (!model) return showGone(req, reply);
    const outcome = await deleteModel(db, model.id);
    if (outcome === 'missing') return showGone(req, reply);
    // deleteModel runs its own transaction: the audit row follows what it did.
    await writeAudit(db, actorOf(req, admin), outcome === 'disabled' ? 'disable-model' : 'delete-model', null, { id: model.id, name: model.name, outcome });
    if (outcome === 'disabled') reply.flash('warning', `“${model.name}” has chats, so it was disabled instead of deleted: their history is kept.`);
    else reply.flash('success', `Model “${model.name}” deleted.`);
    return back(reply);
  });

  app.post('/admin/models/:id/test', async (req, reply) => {
    requireAdmin(req);
    const id = parseId(req);
    const summary = await findModelSummary(db, id);
    if (!summary) return showGone(req, reply);
    if (summary.baseUrl === null) return showList(req, reply, 409, undefined, undefined, `“${summary.name}” has no base URL yet: edit it and set one first.`);
    const conn = await getModelConnection(db, box, id).catch((err: unknown) => {
      if (err instanceof ApiKeyUnreadableError) return err;
      throw err;
    });
    if (!conn) return showGone(req, reply);
    // The result is kept (the list's Health column), not only flashed: the next admin sees it too.
    let failure: string | null = null;
    try {
      if (conn instanceof ApiKeyUnreadableError) throw conn;
      const ids = await listModels(conn, { timeoutMs: TEST_CONNECTION_TIMEOUT_MS });
      const offered = ids.length === 0 ? 'no models offered' : `${ids.length} model${ids.length === 1 ? '' : 's'} offered (${describeModels(ids)})`;
      reply.flash('success', `“${summary.name}” answered: ${offered}.`);
      // A server that does not offer the model id would refuse every answer (404): that is a failed test too.
      if (!ids.includes(conn.model)) {
        failure = `The server does not list the model id “${conn.model.slice(0, 200)}”`;
        reply.flash('warning', `${failure}: check it.`);
      }
    } catch (err) {
      if (!(err instanceof ModelError || err instanceof ApiKeyUnreadableError)) throw err;
      failure = err.message;
      reply.flash('danger', `Testing “${summary.name}” failed: ${err.message}.`);
    }
    await recordTestResult(db, id, failure);
    return back(reply);
  });
}
