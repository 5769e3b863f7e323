import { html, type SafeHtml } from '../views/html.ts';
import type { AuditQuery, AuditRow } from './audit-queries.ts';

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

const person = (id: number | null, name: string | null): SafeHtml =>
  name === null ? html`<span class="text-body-secondary">—</span>` : id === null ? html`${name}` : html`<a href="/admin/users/${id}">${name}</a>`;

/** The rows of the log, newest first; `withTarget` false on a user's own page, where the target is that user. */
export function auditTable(rows: AuditRow[], withTarget = true): SafeHtml {
  if (rows.length === 0) return html`<p class="text-body-secondary">No admin action recorded.</p>`;
  return html`<div class="table-responsive"><table class="table table-sm align-middle" data-audit>
  <thead><tr><th scope="col">When (UTC)</th><th scope="col">Admin</th><th scope="col">Action</th>${withTarget ? html`<th scope="col">User</th>` : ''}<th scope="col">Details</th><th scope="col">IP</th></tr></thead>
  <tbody>${rows.map(
    (r) => html`<tr data-audit-id="${r.id}">
    <td class="text-nowrap"><time datetime="${r.at.toISOString()}">${r.at.toISOString().slice(0, 19).replace('T', ' ')}</time></td>
    <td>${person(r.actorId, r.actor)}</td>
    <td><code>${r.action}</code></td>
    ${withTarget ? html`<td>${person(r.targetId, r.target)}</td>` : ''}
    <td class="text-break small">${Object.keys(r.details).length === 0 ? '' : JSON.stringify(r.details)}</td>
    <td class="small">${r.ip ?? ''}</td>
  </tr>`,
  )}</tbody>
</table></div>`;
}

export function auditPage(v: { query: AuditQuery; rows: AuditRow[]; hasMore: boolean; actions: string[] }): SafeHtml {
  const q = v.query;
  return html`<div class="d-flex flex-wrap justify-content-between align-items-center mb-3 gap-2">
  <h1 class="h4 mb-0">Audit log</h1>
  <div><a class="btn btn-sm btn-outline-light" href="/admin/users">Users</a> <a class="btn btn-sm btn-outline-info" href="/admin/audit${auditSearch(q, { page: 1 }, { format: 'csv' })}" download>Export CSV</a></div>
</div>
<form method="get" action="/admin/audit" class="row g-2 align-items-end mb-3">
  <div class="col-6 col-md-2"><label class="form-label small" for="f-actor">Admin id</label><input class="form-control form-control-sm" id="f-actor" name="actor" inputmode="numeric" value="${q.actorId === undefined ? '' : String(q.actorId)}"></div>
  <div class="col-6 col-md-2"><label class="form-label small" for="f-target">User id</label><input class="form-control form-control-sm" id="f-target" name="target" inputmode="numeric" value="${q.targetId === undefined ? '' : String(q.targetId)}"></div>
  <div class="col-6 col-md-3"><label class="form-label small" for="f-action">Action</label><select class="form-select form-select-sm" id="f-action" name="action"><option value="">Any</option>${v.actions.map(
    (a) => html`<option value="${a}"${a === q.action ? html` selected` : ''}>${a}</option>`,
  )}</select></div>
  <div class="col-auto"><button class="btn btn-sm btn-primary" type="submit">Filter</button> <a class="btn btn-sm btn-outline-light" href="/admin/audit">Clear</a></div>
</form>
${auditTable(v.rows)}
<nav aria-label="Audit log pages"><ul class="pagination pagination-sm">
  ${q.page > 1 ? html`<li class="page-item"><a class="page-link" href="/admin/audit${auditSearch(q, { page: q.page - 1 })}">Newer</a></li>` : ''}
  <li class="page-item active" aria-current="page"><span class="page-link">${q.page}</span></li>
  ${v.hasMore ? html`<li class="page-item"><a class="page-link" href="/admin/audit${auditSearch(q, { page: q.page + 1 })}">Older</a></li>` : ''}
</ul></nav>`;
}
