import type { GroupSummary } from '../groups/group-queries.ts';
import { LIMIT_LABELS, type LimitName } from '../groups/usage-limits.ts';
import { html, type SafeHtml } from '../views/html.ts';
import type { GroupUsage } from './group-stats.ts';
import { type DayRange, rangeQuery } from './range.ts';

const int = (n: number) => n.toLocaleString('en-US');
const PERIOD: Record<LimitName, string> = { prompts_per_day: 'today', tokens_per_day: 'today', tokens_per_month: 'this month' };

/** The group picker of /admin/stats: a plain GET form that keeps the range and the source. */
export function groupPicker(r: DayRange, groups: Array<{ id: number; name: string }>, current: { id: number } | null): SafeHtml {
  if (groups.length === 0) return html``;
  return html`<form method="get" action="/admin/stats" class="d-flex flex-wrap gap-2 align-items-end mb-3" data-testid="group-picker">
  ${r.key === 'custom' ? html`<input type="hidden" name="from" value="${r.from}"><input type="hidden" name="to" value="${r.to}">` : html`<input type="hidden" name="range" value="${r.key}">`}
  ${r.source ? html`<input type="hidden" name="source" value="${r.source}">` : ''}
  <label class="small">Group <select name="group" class="form-select form-select-sm">
    <option value=""${current === null ? html` selected` : ''}>All users</option>
    ${groups.map((g) => html`<option value="${g.id}"${current?.id === g.id ? html` selected` : ''}>${g.name}</option>`)}
  </select></label>
  <button class="btn btn-sm btn-outline-secondary" type="submit">Show</button>
</form>`;
}

/** Who the page is about, and the members' use against the group's limits (each member's own count, as limits apply). */
export function groupSection(r: DayRange, group: GroupSummary & { usage: GroupUsage }, timeZone: string): SafeHtml {
  const u = group.usage;
  return html`<section class="mb-4" data-testid="group-usage">
  <p class="alert alert-secondary py-2">Showing the <strong>${int(u.members)}</strong> ${u.members === 1 ? 'member' : 'members'} of <a href="/admin/groups/${group.id}">${group.name}</a> only: every table and chart below counts their use${r.source ? '' : ' (web and API)'}. <a href="/admin/stats?${rangeQuery({ ...r, group: null })}">All users</a></p>
  <h2 class="h5">${group.name}: use against its limits</h2>
  <div class="table-responsive"><table class="table table-sm align-middle table-stack w-auto" data-testid="group-limits">
    <thead><tr><th scope="col">Limit</th><th scope="col" class="text-end">Group's value</th><th scope="col">Counted</th><th scope="col" class="text-end">Members together</th><th scope="col" class="text-end">Busiest member</th><th scope="col" class="text-end">Members at the limit</th></tr></thead>
    <tbody>${u.limits.map(
      (l) => html`<tr data-limit="${l.limit}"><td data-label="Limit">${LIMIT_LABELS[l.limit]}</td>
      <td data-label="Group's value" class="text-end">${l.value === null ? 'not set' : int(l.value)}</td>
      <td data-label="Counted">${PERIOD[l.limit]}</td>
      <td data-label="Together" class="text-end">${int(l.total)}</td>
      <td data-label="Busiest" class="text-end">${int(l.busiest)}${l.value ? html` <span class="text-body-secondary small">(${Math.round((100 * l.busiest) / l.value)} %)</span>` : ''}</td>
      <td data-label="At the limit" class="text-end">${l.value === null ? '—' : int(l.reached)}</td></tr>`,
    )}</tbody>
  </table></div>
  <p class="small text-body-secondary">A limit applies to each member on their own, so the busiest member is the one it stops first. ${int(u.activeToday)} ${u.activeToday === 1 ? 'member' : 'members'} sent a prompt today. Days and months are counted in ${timeZone}, web and API together, from the statistics. A member's own limit, or a larger one of another of their groups, applies instead of this group's.</p>
</section>`;
}
