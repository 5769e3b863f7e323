import { type GroupSummary, MEMBERS_PER_PAGE, type MemberRow } from '../groups/group-queries.ts';
import { controlError } from '../views/form-errors.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { limitsForm, limitsSummary } from './limits-form.ts';
import { who } from './users-views.ts';

export interface GroupsPageView {
  csrfToken: string;
  groups: GroupSummary[];
  values?: { name?: string; managed?: boolean };
  errors?: Partial<Record<string, string>>;
  /** OIDC_GROUPS_CLAIM, or null when sign-in manages no group. */
  groupsClaim: string | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

const managedBadge = (g: { managed: boolean }) => (g.managed ? html` <span class="badge text-bg-info">managed by sign-in</span>` : '');

function managedHelp(claim: string | null): string {
  return claim
    ? `Members are set at each sign-in with Google or OpenID from the “${claim}” claim (a value equal to the group’s name, ignoring case); they cannot be added or removed here.`
    : 'Members would be set at each sign-in from the ID token’s groups claim, but OIDC_GROUPS_CLAIM is not set: such a group keeps whom it has.';
}

function managedCheckbox(checked: boolean, claim: string | null): SafeHtml {
  return html`<div class="form-check mb-3">
    <input class="form-check-input" type="checkbox" id="f-managed" name="managed" value="on"${checked ? html` checked` : ''} aria-describedby="f-managed-help">
    <label class="form-check-label" for="f-managed">Managed by sign-in</label>
    <div class="form-text" id="f-managed-help">${managedHelp(claim)}</div>
  </div>`;
}

export function groupsPage(v: GroupsPageView): SafeHtml {
  const errors = v.errors ?? {};
  const table =
    v.groups.length === 0
      ? html`<p class="text-body-secondary">No group yet. Groups decide who may use a model (see <a href="/admin/models">Models</a>) and share usage limits.</p>`
      : html`<div class="table-responsive mb-4"><table class="table table-sm align-middle table-stack">
  <thead><tr class="text-nowrap"><th scope="col">Group</th><th scope="col" class="text-end">Members</th><th scope="col" class="text-end">Models</th><th scope="col">Limits</th></tr></thead>
  <tbody>${v.groups.map(
    (g) => html`<tr data-group-id="${g.id}">
    <td data-label="Group" class="fw-semibold text-break"><a href="/admin/groups/${g.id}">${g.name}</a>${managedBadge(g)}</td>
    <td data-label="Members" class="text-end">${g.memberCount.toLocaleString('en-US')}</td>
    <td data-label="Models" class="text-end">${g.modelCount}</td>
    <td data-label="Limits">${limitsSummary(g.limits)}</td>
  </tr>`,
  )}</tbody>
</table></div>`;
  return html`<h1 class="h4 mb-3">Groups</h1>
${table}
<div class="card"><div class="card-body">
  <h2 class="h5 mb-3">Create a group</h2>
  ${formAlert(Object.keys(errors).length > 0 ? 'The group was not created: see the message below.' : undefined)}
  <form method="post" action="/admin/groups" novalidate>
    ${csrfField(v.csrfToken)}
    ${field({ name: 'name', label: 'Name', value: v.values?.name, error: errors.name, maxlength: 100 })}
    ${managedCheckbox(v.values?.managed === true, v.groupsClaim)}
    <button class="btn btn-primary" type="submit">Create group</button>
  </form>
</div></div>`;
}

export interface GroupPageView {
  csrfToken: string;
  group: GroupSummary;
  members: MemberRow[];
  total: number;
  q: string;
  page: number;
  /** "Add by search": the search typed and the accounts it found that are not members yet. */
  addQ: string;
  candidates: Array<{ id: number; username: string; email: string }>;
  models: Array<{ id: number; name: string }>;
  groupsClaim: string | null;
  /** A refused form, shown beside it: which one, the message, and for the limits and settings what was typed. */
  refusal?: { at: 'members' | 'add' | 'settings' | 'limits'; message: string; errors?: Partial<Record<string, string>>; values?: Record<string, string> };
}

function search(v: GroupPageView, change: { q?: string; page?: number; addQ?: string }): string {
  const params = new URLSearchParams();
  const q = change.q ?? v.q;
  const page = change.page ?? v.page;
  const addQ = change.addQ ?? v.addQ;
  if (q) params.set('q', q);
  if (page > 1) params.set('page', String(page));
  if (addQ) params.set('add_q', addQ);
  const s = params.toString();
  return s ? `?${s}` : '';
}

function pageLinks(v: GroupPageView): SafeHtml {
  const last = Math.max(1, Math.ceil(v.total / MEMBERS_PER_PAGE));
  if (last === 1) return html``;
  const shown = [...new Set([1, v.page - 1, v.page, v.page + 1, last])].filter((p) => p >= 1 && p <= last).sort((a, b) => a - b);
  const items: SafeHtml[] = [];
  let previous = 0;
  for (const p of shown) {
    if (p > previous + 1) items.push(html`<li class="page-item disabled"><span class="page-link">…</span></li>`);
    items.push(
      p === v.page
        ? html`<li class="page-item active" aria-current="page"><span class="page-link">${p}</span></li>`
        : html`<li class="page-item"><a class="page-link" href="/admin/groups/${v.group.id}${search(v, { page: p })}">${p}</a></li>`,
    );
    previous = p;
  }
  return html`<nav aria-label="Member pages"><ul class="pagination pagination-sm flex-wrap">${items}</ul></nav>`;
}

function membersCard(v: GroupPageView): SafeHtml {
  const g = v.group;
  const base = `/admin/groups/${g.id}`;
  const refusal = v.refusal?.at === 'members' ? v.refusal : undefined;
  const from = v.total === 0 ? 0 : (v.page - 1) * MEMBERS_PER_PAGE + 1;
  const to = (v.page - 1) * MEMBERS_PER_PAGE + v.members.length;
  const rows = v.members.map(
    (m) => html`<tr>
    ${g.managed ? '' : html`<td data-label="Select"><input class="form-check-input" type="checkbox" name="user_ids" value="${m.id}" form="remove-members" aria-label="Select ${m.username}" data-name="${who(m)}"></td>`}
    <td data-label="Username" class="fw-semibold text-break"><a href="/admin/users/${m.id}">${m.username}</a></td>
    <td data-label="E-mail" class="text-break">${m.email}</td>
    <td data-label="Status">${m.isActive ? html`<span class="badge text-bg-success">active</span>` : html`<span class="badge text-bg-danger">deactivated</span>`}</td>
    <td data-label="Added" class="text-nowrap">${m.addedAt.toISOString().slice(0, 10)}</td>
  </tr>`,
  );
  return html`<div class="card mb-3"><div class="card-body">
  <h2 class="h5 mb-3" id="members">Members</h2>
  ${g.managed ? html`<p class="small text-body-secondary">${managedHelp(v.groupsClaim)}</p>${formAlert(v.refusal?.at === 'members' || v.refusal?.at === 'add' ? v.refusal.message : undefined)}` : ''}
  <form method="get" action="${base}" class="d-flex flex-wrap gap-2 align-items-end mb-2" role="search">
    <div><label class="form-label small" for="f-q">Search members</label><input class="form-control form-control-sm" id="f-q" name="q" type="search" value="${v.q}" maxlength="200"></div>
    <button class="btn btn-sm btn-primary" type="submit">Search</button>
  </form>
  <p class="small text-body-secondary" data-total="${v.total}">${v.total === 0 ? (v.q ? 'No member matches.' : 'No members yet.') : `${from}–${to} of ${v.total.toLocaleString('en-US')}`}</p>
  ${
    g.managed || v.members.length === 0
      ? ''
      : html`<form method="post" action="${base}/members/remove" id="remove-members" class="mb-2" data-confirm-count="user_ids"
      data-confirm="Remove {count} from “${g.name}”: {names}? They lose the models and limits of this group." data-confirm-button="Remove">
      ${csrfField(v.csrfToken)}<button class="btn btn-sm btn-outline-danger" type="submit"${refusal ? html` aria-describedby="members-error"` : ''}>Remove selected</button>
      ${controlError('members-error', refusal?.message)}</form>`
  }
  ${
    v.members.length === 0
      ? ''
      : html`<div class="table-responsive"><table class="table table-sm align-middle table-stack">
    <thead class="text-nowrap"><tr>${g.managed ? '' : html`<th scope="col"><span class="visually-hidden">Select</span></th>`}<th scope="col">Username</th><th scope="col">E-mail</th><th scope="col">Status</th><th scope="col">Added</th></tr></thead>
    <tbody>${rows}</tbody></table></div>`
  }
  ${pageLinks(v)}
  ${g.managed ? '' : addCard(v)}
</div></div>`;
}

function addCard(v: GroupPageView): SafeHtml {
  const base = `/admin/groups/${v.group.id}`;
  const refusal = v.refusal?.at === 'add' ? v.refusal : undefined;
  return html`<h3 class="h6 mt-4" id="add-members">Add members</h3>
  <form method="get" action="${base}" class="d-flex flex-wrap gap-2 align-items-end mb-2" role="search">
    ${v.q ? html`<input type="hidden" name="q" value="${v.q}">` : ''}
    <div><label class="form-label small" for="f-add-q">Find people by name or e-mail</label><input class="form-control form-control-sm" id="f-add-q" name="add_q" type="search" value="${v.addQ}" maxlength="200"></div>
    <button class="btn btn-sm btn-outline-light" type="submit">Find</button>
  </form>
  ${
    v.addQ === ''
      ? ''
      : v.candidates.length === 0
        ? html`<p class="small text-body-secondary">Nobody outside the group matches “${v.addQ}”.</p>`
        : html`<form method="post" action="${base}/members" id="add-form">${csrfField(v.csrfToken)}
      <ul class="list-unstyled mb-2">${v.candidates.map(
        (c) =>
          html`<li><label class="form-check"><input class="form-check-input" type="checkbox" name="user_ids" value="${c.id}"> <span class="form-check-label text-break">${who(c)}</span></label></li>`,
      )}</ul>
      <button class="btn btn-sm btn-primary" type="submit">Add selected</button></form>`
  }
  ${controlError('add-error', refusal?.message)}`;
}

export function groupPage(v: GroupPageView): SafeHtml {
  const g = v.group;
  const base = `/admin/groups/${g.id}`;
  const settings = v.refusal?.at === 'settings' ? v.refusal : undefined;
  const limits = v.refusal?.at === 'limits' ? v.refusal : undefined;
  const deleteQuestion = `Delete the group “${g.name}”? Its ${plural(g.memberCount, 'member')} leave it${
    g.modelCount > 0 ? `, and the ${plural(g.modelCount, 'model')} restricted to it lose this group (a model restricted to no group is usable by nobody)` : ''
  }; its limits no longer apply. This cannot be undone.`;
  return html`<nav aria-label="breadcrumb"><ol class="breadcrumb small"><li class="breadcrumb-item"><a href="/admin/groups">Groups</a></li><li class="breadcrumb-item active" aria-current="page">${g.name}</li></ol></nav>
<div class="d-flex flex-wrap justify-content-between align-items-center gap-2 mb-3">
  <h1 class="h4 mb-0 text-break">${g.name}${managedBadge(g)}</h1>
  <form method="post" action="${base}/delete" data-confirm="${deleteQuestion}" data-confirm-button="Delete group">${csrfField(v.csrfToken)}<button class="btn btn-sm btn-outline-danger" type="submit">Delete group</button></form>
</div>
${membersCard(v)}
<div class="row g-3">
  <div class="col-12 col-lg-6"><div class="card h-100"><div class="card-body">
    <h2 class="h5 mb-3" id="limits">Limits</h2>
    ${formAlert(limits?.errors ? undefined : limits?.message)}
    ${limitsForm({
      action: `${base}/limits`,
      csrfToken: v.csrfToken,
      values: limits?.values ?? g.limits,
      errors: limits?.errors,
      help: 'For each member without limits of their own, the most generous value among their groups that set it applies. Empty: this group sets no limit. Days and months are counted in STATS_TIMEZONE.',
    })}
  </div></div></div>
  <div class="col-12 col-lg-6"><div class="card h-100"><div class="card-body">
    <h2 class="h5 mb-3" id="models">Models</h2>
    ${
      v.models.length === 0
        ? html`<p class="small text-body-secondary">No model is restricted to this group. Its members use the models open to everyone.</p>`
        : html`<p class="small text-body-secondary">Besides the models open to everyone, members may use:</p><ul>${v.models.map((m) => html`<li><a href="/admin/models/${m.id}/edit#access">${m.name}</a></li>`)}</ul>`
    }
    <p class="small text-body-secondary mb-0">Who may use a model is set on the model’s page, under <a href="/admin/models">Models</a>.</p>
  </div></div></div>
</div>
<div class="card mt-3"><div class="card-body">
  <h2 class="h5 mb-3" id="settings">Name and membership</h2>
  ${formAlert(settings?.errors ? undefined : settings?.message)}
  <form method="post" action="${base}/settings" novalidate>
    ${csrfField(v.csrfToken)}
    ${field({ name: 'name', label: 'Name', value: settings?.values?.name ?? g.name, error: settings?.errors?.name, maxlength: 100 })}
    ${managedCheckbox(settings?.values ? settings.values.managed === 'on' : g.managed, v.groupsClaim)}
    <button class="btn btn-sm btn-primary" type="submit">Save</button>
  </form>
</div></div>`;
}
