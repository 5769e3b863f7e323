import { html, type SafeHtml } from '../views/html.ts';
import type { AccountRef, AuditAction, AuditQuery, AuditRow } from './audit-queries.ts';
import { auditSentence, sentenceHtml } from './audit-sentences.ts';

/** What the Action filter lists, in words (the URL keeps the action's code). */
export const ACTION_LABELS: Record<AuditAction, string> = {
  promote: 'Made admin',
  demote: 'Made user',
  deactivate: 'Deactivated',
  reactivate: 'Reactivated',
  'sign-out-everywhere': 'Signed out everywhere',
  'revoke-session': 'Ended a session',
  'reset-2fa': 'Reset 2FA',
  'remove-passkeys': 'Passkeys removed',
  'passkey-counter-regressed': 'Passkey refused (possible clone)',
  'create-reset-link': 'Password reset link',
  'create-user': 'Account created',
  'create-model': 'Model added',
  'update-model': 'Model changed',
  'enable-model': 'Model enabled',
  'disable-model': 'Model disabled',
  'delete-model': 'Model deleted',
  'default-model': 'Default model set',
  'model-access': 'Model access changed',
  'create-group': 'Group created',
  'update-group': 'Group changed',
  'delete-group': 'Group deleted',
  'add-to-group': 'Added to a group',
  'remove-from-group': 'Removed from a group',
  'group-limits': 'Group limits set',
  'user-limits': 'User limits set',
  'create-api-key': 'API key created',
  'revoke-api-key': 'API key revoked',
};

/** The filter form as typed: the text of each name field (or the e-mail of the account an old id link meant). */
export interface AuditFilterForm {
  admin: string;
  user: string;
}

/** Why a name field was not understood, and the accounts it could mean (each a link that filters by it). */
export interface FilterError {
  message: string;
  candidates: AccountRef[];
}

export type AuditFilterErrors = Partial<Record<'admin' | 'user', FilterError>>;

export function auditSearch(q: AuditQuery, change: Partial<AuditQuery> = {}, extra: Record<string, string> = {}): string {
  const v = { ...q, ...change };
  const params = new URLSearchParams();
  if (v.actorId !== undefined) params.set('actor', String(v.actorId));
  if (v.targetId !== undefined) params.set('target', String(v.targetId));
  if (v.action !== undefined) params.set('action', v.action);
  if (v.page !== 1) params.set('page', String(v.page));
  for (const [k, val] of Object.entries(extra)) params.set(k, val);
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

const utc = (at: Date): string => at.toISOString().slice(0, 19).replace('T', ' ');

/**
 * The rows of the log, newest first, each a sentence (src/admin/audit-sentences.ts). Used by the log and by a user's
 * page. `table-stack` turns each row into a card at phone width, its cells labelled by `data-label`.
 */
export function auditTable(rows: AuditRow[]): SafeHtml {
  if (rows.length === 0) return html`<p class="text-body-secondary">No admin action recorded.</p>`;
  return html`<div class="table-responsive"><table class="table table-sm align-middle table-stack" data-audit>
  <thead><tr><th scope="col">When (UTC)</th><th scope="col">What happened</th><th scope="col">IP</th></tr></thead>
  <tbody>${rows.map(
    (r) => html`<tr data-audit-id="${r.id}" data-action="${r.action}">
    <td data-label="When (UTC)" class="text-nowrap"><time datetime="${r.at.toISOString()}">${utc(r.at)}</time></td>
    <td data-label="What happened" class="text-break">${sentenceHtml(auditSentence(r))}</td>
    <td data-label="IP" class="small text-nowrap">${r.ip ?? ''}</td>
  </tr>`,
  )}</tbody>
</table></div>`;
}

function filterError(id: string, error: FilterError, pick: (account: AccountRef) => string): SafeHtml {
  const links = error.candidates.map((c, i) => html`${i > 0 ? ', ' : ''}<a href="${pick(c)}">${c.username}</a> (${c.email})`);
  return html`<div class="invalid-feedback" id="${id}-error">${error.message}${links.length > 0 ? html` ${links}.` : ''}</div>`;
}

function personField(
  name: 'admin' | 'user',
  label: string,
  value: string,
  error: FilterError | undefined,
  people: AccountRef[],
  pick: (account: AccountRef) => string,
): SafeHtml {
  const id = `f-${name}`;
  return html`<div class="col-12 col-sm-6 col-md-3"><label class="form-label small" for="${id}">${label}</label>
  <input class="form-control form-control-sm${error ? ' is-invalid' : ''}" id="${id}" name="${name}" type="search" list="people-${name}" maxlength="254"
    autocomplete="off" placeholder="Name or e-mail" value="${value}"${error ? html` aria-describedby="${id}-error"` : ''}>
  <datalist id="people-${name}">${people.map((p) => html`<option value="${p.email}">${p.username}</option>`)}</datalist>
  ${error ? filterError(id, error, pick) : ''}</div>`;
}

export interface AuditPageView {
  query: AuditQuery;
  form: AuditFilterForm;
  errors: AuditFilterErrors;
  /** null when a filter could not be understood: the form is shown again with its message, and no rows. */
  rows: AuditRow[] | null;
  hasMore: boolean;
  people: { admins: AccountRef[]; users: AccountRef[] };
}

export function auditPage(v: AuditPageView): SafeHtml {
  const q = v.query;
  const actions = Object.entries(ACTION_LABELS);
  return html`<div class="d-flex flex-wrap justify-content-between align-items-center mb-3 gap-2">
  <h1 class="h4 mb-0">Audit log</h1>
  <div><a class="btn btn-sm btn-outline-light" href="/admin/users">Users</a> <a class="btn btn-sm btn-outline-info" href="/admin/audit${auditSearch(q, { page: 1 }, { format: 'csv' })}" download>Export CSV</a></div>
</div>
<form method="get" action="/admin/audit" class="row g-2 align-items-start mb-3">
  ${personField('admin', 'Admin', v.form.admin, v.errors.admin, v.people.admins, (c) => `/admin/audit${auditSearch(q, { actorId: c.id, page: 1 })}`)}
  ${personField('user', 'User', v.form.user, v.errors.user, v.people.users, (c) => `/admin/audit${auditSearch(q, { targetId: c.id, page: 1 })}`)}
  <div class="col-12 col-sm-6 col-md-3"><label class="form-label small" for="f-action">Action</label><select class="form-select form-select-sm" id="f-action" name="action"><option value="">Any</option>${actions.map(
    ([a, label]) => html`<option value="${a}"${a === q.action ? html` selected` : ''}>${label}</option>`,
  )}</select></div>
  <div class="col-12 col-sm-6 col-md-3"><span class="form-label small d-none d-sm-block invisible" aria-hidden="true">Filter</span><button class="btn btn-sm btn-primary" type="submit">Filter</button> <a class="btn btn-sm btn-outline-light" href="/admin/audit">Clear</a></div>
</form>
${v.rows === null ? '' : auditTable(v.rows)}
${
  v.rows === null
    ? ''
    : html`<nav aria-label="Audit log pages"><ul class="pagination pagination-sm">
  ${q.page > 1 ? html`<li class="page-item"><a class="page-link" href="/admin/audit${auditSearch(q, { page: q.page - 1 })}">Newer</a></li>` : ''}
  <li class="page-item active" aria-current="page"><span class="page-link">${q.page}</span></li>
  ${v.hasMore ? html`<li class="page-item"><a class="page-link" href="/admin/audit${auditSearch(q, { page: q.page + 1 })}">Older</a></li>` : ''}
</ul></nav>`
}`;
}
