import { controlError } from '../views/form-errors.ts';
import { csrfField } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import type { UserListQuery, UserListRow, UserSort } from './user-list-queries.ts';
import { USERS_PER_PAGE } from './user-list-queries.ts';

export interface UsersPageView {
  csrfToken: string;
  query: UserListQuery;
  users: UserListRow[];
  total: number;
  /** The search had more matches than were counted (SEARCH_COUNT_CAP): the total reads "10000+". */
  totalIsCapped: boolean;
  selfId: number;
  /** A refused action, shown again beside what was used: the bulk form (with what was ticked and chosen) or a row. */
  refusal?: ListRefusal;
  /** The groups the bulk form can add people to or remove them from (not those managed by sign-in). */
  groups?: Array<{ id: number; name: string }>;
}

export type ListRefusal = { message: string } & ({ at: 'bulk'; action: string; ticked: number[] } | { at: 'row'; userId: number });

/** What a confirm dialog (web/confirm.ts) asks before a form posts: the question, naming who and what, and its button. */
export interface Confirmation {
  message: string;
  button: string;
}

/** How a person is named in a question: their name and address, so two people with one name are told apart. */
export const who = (u: { username: string; email: string }): string => `${u.username} (${u.email})`;

export const confirmDeactivate = (u: { username: string; email: string }): Confirmation => ({
  message: `Deactivate ${who(u)}? They are signed out everywhere at once, their running answers stop, and they cannot sign in until reactivated.`,
  button: 'Deactivate',
});

export const confirmDemote = (u: { username: string; email: string }): Confirmation => ({
  message: `Demote ${who(u)} to User? They lose the admin pages at their next click.`,
  button: 'Demote',
});

/** The list's query string for `query` with some values changed; defaults are left out so URLs stay short. */
export function listSearch(query: UserListQuery, change: Partial<UserListQuery> = {}): string {
  const q = { ...query, ...change };
  const params = new URLSearchParams();
  if (q.q !== '') params.set('q', q.q);
  if (q.status !== 'all') params.set('status', q.status);
  if (q.adminsOnly) params.set('role', 'admin');
  if (q.twoFactorOff) params.set('twofa', 'off');
  if (q.sort !== 'username') params.set('sort', q.sort);
  if (q.page !== 1) params.set('page', String(q.page));
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

/** The day in the table (it has eleven columns to fit), the minute in the tooltip. */
const dateTime = (d: Date | null): SafeHtml =>
  d === null
    ? html`<span class="text-body-secondary">never</span>`
    : html`<time datetime="${d.toISOString()}" title="${d.toISOString().slice(0, 16).replace('T', ' ')} UTC">${d.toISOString().slice(0, 10)}</time>`;

/** A one-button form; with `confirm`, web/confirm.ts asks first (without JavaScript it posts at once). */
/**
 * An address breaks before its @ first; a name or address longer than its column breaks inside (text-break), so one
 * long value does not push the table's last columns (the actions) out of sight.
 */
/** Which second factors an account has: TOTP, passkeys (either satisfies REQUIRE_2FA_FOR_ADMINS), or none. */
export function secondFactors(u: { is2faEnabled: boolean; passkeys: number }): SafeHtml {
  const ways = [...(u.is2faEnabled ? ['TOTP'] : []), ...(u.passkeys > 0 ? [u.passkeys === 1 ? 'passkey' : `${u.passkeys} passkeys`] : [])];
  return ways.length === 0 ? html`<span class="text-body-secondary">off</span>` : html`${ways.join(' + ')}`;
}

function emailWrapping(email: string): SafeHtml {
  const at = email.lastIndexOf('@');
  return at <= 0 ? html`${email}` : html`${email.slice(0, at)}<wbr>${email.slice(at)}`;
}

export function postButton(csrfToken: string, action: string, label: string, style: string, back: string, confirm?: Confirmation): SafeHtml {
  const ask = confirm ? html` data-confirm="${confirm.message}" data-confirm-button="${confirm.button}"` : '';
  return html`<form method="post" action="${action}" class="d-inline"${ask}>${csrfField(csrfToken)}<input type="hidden" name="back" value="${back}"><button type="submit" class="btn btn-sm ${style}">${label}</button></form>`;
}

function rowActions(v: UsersPageView, u: UserListRow, back: string): SafeHtml {
  const base = `/admin/users/${u.id}`;
  const isAdmin = u.roles.includes('Admin');
  const refused = v.refusal?.at === 'row' && v.refusal.userId === u.id ? controlError(`user-${u.id}-error`, v.refusal.message) : '';
  if (u.id === v.selfId) return html`<span class="text-body-secondary small">you</span>${refused}`;
  return html`${isAdmin ? postButton(v.csrfToken, `${base}/demote`, 'Demote', 'btn-outline-warning', back, confirmDemote(u)) : postButton(v.csrfToken, `${base}/promote`, 'Promote', 'btn-outline-info', back)}
    ${u.isActive ? postButton(v.csrfToken, `${base}/deactivate`, 'Deactivate', 'btn-outline-danger', back, confirmDeactivate(u)) : postButton(v.csrfToken, `${base}/reactivate`, 'Reactivate', 'btn-outline-success', back)}${refused}`;
}

function row(v: UsersPageView, u: UserListRow, back: string): SafeHtml {
  const ticked = v.refusal?.at === 'bulk' && v.refusal.ticked.includes(u.id) && u.id !== v.selfId;
  // No row colour for deactivated accounts: Bootstrap's light table variants turn the dark theme's text unreadable.
  // data-label: the column's name beside each value when the table stacks into cards on a phone (.table-stack).
  return html`<tr data-user-id="${u.id}">
  <td data-label="Select"><input class="form-check-input" type="checkbox" name="ids" value="${u.id}" form="bulk" aria-label="Select ${u.username}" data-name="${who(u)}"${u.id === v.selfId ? html` disabled` : ''}${ticked ? html` checked` : ''}></td>
  <td data-label="Username" class="fw-semibold text-break"><a href="/admin/users/${u.id}">${u.username}</a></td>
  <td data-label="E-mail" class="text-break">${emailWrapping(u.email)}</td>
  <td data-label="Roles">${u.roles.map((r) => html`<span class="badge ${r === 'Admin' ? 'text-bg-primary' : 'text-bg-secondary'} me-1">${r}</span>`)}</td>
  <td data-label="Status">${u.isActive ? html`<span class="badge text-bg-success">active</span>` : html`<span class="badge text-bg-danger">deactivated</span>`}</td>
  <td data-label="2FA">${secondFactors(u)}</td>
  <td data-label="Sign-in">${u.signInMethods.length === 0 ? html`<span class="text-body-secondary">none</span>` : u.signInMethods.join(', ')}</td>
  <td data-label="Created" class="text-nowrap">${dateTime(u.created)}</td>
  <td data-label="Last sign-in" class="text-nowrap">${dateTime(u.lastSignIn)}</td>
  <td data-label="Prompts" class="text-end">${u.prompts}</td>
  <td class="text-end text-nowrap">${rowActions(v, u, back)}</td>
</tr>`;
}

function sortHeader(v: UsersPageView, sort: UserSort, label: string, extraClass = ''): SafeHtml {
  const current = v.query.sort === sort;
  return html`<th scope="col" class="${extraClass}"${current ? html` aria-sort="${sort === 'username' ? 'ascending' : 'descending'}"` : ''}><a class="link-light${current ? ' fw-bold' : ''}" href="/admin/users${listSearch(v.query, { sort, page: 1 })}">${label}${current ? (sort === 'username' ? ' ▲' : ' ▼') : ''}</a></th>`;
}

const option = (value: string, label: string, selected: boolean, confirm?: Confirmation): SafeHtml =>
  html`<option value="${value}"${selected ? html` selected` : ''}${confirm ? html` data-confirm="${confirm.message}" data-confirm-button="${confirm.button}"` : ''}>${label}</option>`;

function searchForm(q: UserListQuery): SafeHtml {
  return html`<form method="get" action="/admin/users" class="row g-2 align-items-end mb-3" role="search">
  <div class="col-12 col-md-4"><label class="form-label small" for="f-q">Search username or e-mail</label>
    <input class="form-control form-control-sm" id="f-q" name="q" type="search" value="${q.q}" maxlength="200"></div>
  <div class="col-6 col-md-2"><label class="form-label small" for="f-status">Status</label>
    <select class="form-select form-select-sm" id="f-status" name="status">${option('all', 'All', q.status === 'all')}${option('active', 'Active', q.status === 'active')}${option('deactivated', 'Deactivated', q.status === 'deactivated')}</select></div>
  <div class="col-6 col-md-2 form-check ms-2"><input class="form-check-input" type="checkbox" id="f-role" name="role" value="admin"${q.adminsOnly ? html` checked` : ''}><label class="form-check-label small" for="f-role">Admins only</label></div>
  <div class="col-6 col-md-2 form-check ms-2"><input class="form-check-input" type="checkbox" id="f-twofa" name="twofa" value="off"${q.twoFactorOff ? html` checked` : ''}><label class="form-check-label small" for="f-twofa" title="Neither TOTP nor a passkey">2FA off</label></div>
  ${q.sort === 'username' ? '' : html`<input type="hidden" name="sort" value="${q.sort}">`}
  <div class="col-auto"><button class="btn btn-sm btn-primary" type="submit">Search</button> <a class="btn btn-sm btn-outline-light" href="/admin/users">Clear</a></div>
</form>`;
}

/** First, last, and the pages around the current one: a window, not 2,000 links. */
function pageLinks(v: UsersPageView): SafeHtml {
  const last = Math.max(1, Math.ceil(v.total / USERS_PER_PAGE));
  if (last === 1) return html``;
  const current = v.query.page;
  const shown = [...new Set([1, current - 2, current - 1, current, current + 1, current + 2, last])].filter((p) => p >= 1 && p <= last).sort((a, b) => a - b);
  const items: SafeHtml[] = [];
  let previous = 0;
  for (const p of shown) {
    if (p > previous + 1) items.push(html`<li class="page-item disabled"><span class="page-link">…</span></li>`);
    items.push(
      p === current
        ? html`<li class="page-item active" aria-current="page"><span class="page-link">${p}</span></li>`
        : html`<li class="page-item"><a class="page-link" href="/admin/users${listSearch(v.query, { page: p })}">${p}</a></li>`,
    );
    previous = p;
  }
  return html`<nav aria-label="User list pages"><ul class="pagination pagination-sm flex-wrap">${items}</ul></nav>`;
}

/**
 * "With the selected users": the checkboxes in the rows belong to this form (form="bulk"). The question before a
 * destructive action counts and names the ticked people ({count} and {names}, filled in by web/confirm.ts); with nobody
 * ticked no question is asked and the server says "Select at least one user." beside the select.
 */
function bulkForm(v: UsersPageView, back: string): SafeHtml {
  const refusal = v.refusal?.at === 'bulk' ? v.refusal : undefined;
  const chosen = refusal?.action ?? 'deactivate';
  return html`<form method="post" action="/admin/users/bulk" id="bulk" class="d-flex flex-wrap gap-2 align-items-center mb-2" data-confirm-count="ids">
  ${csrfField(v.csrfToken)}<input type="hidden" name="back" value="${back}">
  <label class="small" for="f-bulk-action">With the selected users:</label>
  <select class="form-select form-select-sm w-auto${refusal ? ' is-invalid' : ''}" id="f-bulk-action" name="action"${refusal ? html` aria-describedby="bulk-error"` : ''}>${option(
    'deactivate',
    'Deactivate',
    chosen === 'deactivate',
    {
      message: 'Deactivate {count}: {names}? They are signed out everywhere at once and cannot sign in until reactivated.',
      button: 'Deactivate',
    },
  )}${option('reactivate', 'Reactivate', chosen === 'reactivate')}${option('sign-out-everywhere', 'Sign out everywhere', chosen === 'sign-out-everywhere', {
    message: 'Sign out {count} everywhere: {names}? Every browser of theirs is signed out at once.',
    button: 'Sign out everywhere',
  })}${
    v.groups && v.groups.length > 0
      ? html`${option('add-to-group', 'Add to group', chosen === 'add-to-group')}${option(
          'remove-from-group',
          'Remove from group',
          chosen === 'remove-from-group',
          {
            message: 'Remove {count} from the chosen group: {names}?',
            button: 'Remove',
          },
        )}`
      : ''
  }</select>
  ${
    v.groups && v.groups.length > 0
      ? html`<label class="visually-hidden" for="f-bulk-group">Group</label><select class="form-select form-select-sm w-auto mw-100" id="f-bulk-group" name="group"><option value="">(group)</option>${v.groups.map(
          (g) => html`<option value="${g.id}">${g.name}</option>`,
        )}</select>`
      : ''
  }
  <button class="btn btn-sm btn-outline-warning" type="submit">Apply</button>
  ${refusal ? html`<div class="w-100">${controlError('bulk-error', refusal.message)}</div>` : ''}
</form>`;
}

export function usersPage(v: UsersPageView): SafeHtml {
  const back = listSearch(v.query);
  const from = v.total === 0 ? 0 : (v.query.page - 1) * USERS_PER_PAGE + 1;
  const to = (v.query.page - 1) * USERS_PER_PAGE + v.users.length;
  return html`<div class="d-flex flex-wrap justify-content-between align-items-center mb-3 gap-2">
  <h1 class="h4 mb-0">Users</h1>
  <div><a class="btn btn-sm btn-outline-light" href="/admin/audit">Audit log</a> <a class="btn btn-sm btn-primary" href="/admin/users/new">Add a user</a></div>
</div>
${searchForm(v.query)}
<p class="small text-body-secondary" data-total="${v.total}">${v.total === 0 ? 'No user matches.' : `${from}–${to} of ${v.total}${v.totalIsCapped ? '+' : ''} user${v.total === 1 ? '' : 's'}${v.totalIsCapped ? ': type more to narrow the search' : ''}`}</p>
${bulkForm(v, back)}
${v.refusal?.at === 'row' && !v.users.some((u) => v.refusal?.at === 'row' && u.id === v.refusal.userId) ? html`<div class="alert alert-danger" id="list-error" role="alert">${v.refusal.message}</div>` : ''}
<div class="table-responsive"><table class="table table-sm align-middle table-stack">
  <thead class="text-nowrap"><tr data-label="Sort by"><th scope="col"><span class="visually-hidden">Select</span></th>${sortHeader(v, 'username', 'Username')}<th scope="col">E-mail</th><th scope="col">Roles</th><th scope="col">Status</th><th scope="col">2FA</th><th scope="col">Sign-in</th>${sortHeader(v, 'created', 'Created')}${sortHeader(v, 'last-sign-in', 'Last sign-in')}${sortHeader(v, 'prompts', 'Prompts', 'text-end')}<th scope="col" class="text-end">Actions</th></tr></thead>
  <tbody>${v.users.map((u) => row(v, u, back))}</tbody>
</table></div>
${pageLinks(v)}`;
}
