import { LIMIT_LABELS, LIMIT_NAMES, type Limits, type UsageStatus } from '../groups/usage-limits.ts';
import { formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { limitsForm } from './limits-form.ts';

export interface UserLimitsView {
  csrfToken: string;
  userId: number;
  groups: Array<{ id: number; name: string; managed: boolean }>;
  own: Limits;
  status: UsageStatus;
  refusal?: { errors: Partial<Record<string, string>>; values: Record<string, string> };
}

const usedOf = (s: UsageStatus, name: keyof Limits) =>
  name === 'prompts_per_day' ? s.used.promptsToday : name === 'tokens_per_day' ? s.used.tokensToday : s.used.tokensThisMonth;

/** A user's groups, their own limits (a form), and the limits that apply with what is used of them. */
export function userLimitsSection(v: UserLimitsView): SafeHtml {
  return html`<h2 class="h5 mt-4" id="groups">Groups and limits</h2>
<div class="row g-3">
  <div class="col-12 col-lg-6"><div class="card h-100"><div class="card-body">
    <h3 class="h6">Groups</h3>
    ${
      v.groups.length === 0
        ? html`<p class="small text-body-secondary">In no group. Add people to groups on a <a href="/admin/groups">group’s page</a> or with the bulk actions of Users.</p>`
        : html`<ul class="mb-2">${v.groups.map((g) => html`<li><a href="/admin/groups/${g.id}">${g.name}</a>${g.managed ? html` <span class="badge text-bg-info">managed by sign-in</span>` : ''}</li>`)}</ul>`
    }
    <h3 class="h6 mt-3">Limits that apply now</h3>
    <table class="table table-sm w-auto mb-0"><thead><tr><th scope="col">Limit</th><th scope="col" class="text-end">Value</th><th scope="col" class="text-end">Used</th></tr></thead>
    <tbody>${LIMIT_NAMES.map(
      (n) =>
        html`<tr><td>${LIMIT_LABELS[n]}</td><td class="text-end">${v.status.limits[n] === null ? 'unlimited' : (v.status.limits[n] ?? 0).toLocaleString('en-US')}</td><td class="text-end">${usedOf(v.status, n).toLocaleString('en-US')}</td></tr>`,
    )}</tbody></table>
  </div></div></div>
  <div class="col-12 col-lg-6"><div class="card h-100"><div class="card-body">
    <h3 class="h6">Own limits</h3>
    ${formAlert(v.refusal ? 'Nothing was changed: see the messages below.' : undefined)}
    ${limitsForm({
      action: `/admin/users/${v.userId}/limits`,
      csrfToken: v.csrfToken,
      values: v.refusal?.values ?? v.own,
      errors: v.refusal?.errors,
      help: 'A value set here replaces what this person’s groups allow, higher or lower. Empty: their groups decide (no group setting it: unlimited).',
    })}
  </div></div></div>
</div>`;
}
