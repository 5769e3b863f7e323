import { html, type SafeHtml } from '../views/html.ts';
import { formatResetTime, LIMIT_LABELS, LIMIT_NAMES, type LimitName, type UsageStatus } from './usage-limits.ts';

const used = (s: UsageStatus, n: LimitName) =>
  n === 'prompts_per_day' ? s.used.promptsToday : n === 'tokens_per_day' ? s.used.tokensToday : s.used.tokensThisMonth;

/** One's groups and limits, with what is used and left of each and when it resets (/settings/usage). */
export function ownLimitsSection(status: UsageStatus, groups: Array<{ name: string }>, timeZone: string): SafeHtml {
  const set = LIMIT_NAMES.filter((n) => status.limits[n] !== null);
  const groupLine =
    groups.length === 0 ? html`You are in no group.` : html`Your groups: ${groups.map((g, i) => html`${i > 0 ? ', ' : ''}<strong>${g.name}</strong>`)}.`;
  const table =
    set.length === 0
      ? html`<p>You have no usage limits.</p>`
      : html`<div class="table-responsive"><table class="table table-sm align-middle table-stack w-auto" id="own-limits">
  <thead><tr><th scope="col">Limit</th><th scope="col" class="text-end">Allowed</th><th scope="col" class="text-end">Used</th><th scope="col" class="text-end">Left</th><th scope="col">Starts again</th></tr></thead>
  <tbody>${set.map((n) => {
    const limit = status.limits[n] ?? 0;
    const u = used(status, n);
    return html`<tr><td data-label="Limit">${LIMIT_LABELS[n]}</td><td data-label="Allowed" class="text-end">${limit.toLocaleString('en-US')}</td>
      <td data-label="Used" class="text-end">${u.toLocaleString('en-US')}</td><td data-label="Left" class="text-end">${Math.max(0, limit - u).toLocaleString('en-US')}</td>
      <td data-label="Starts again">${formatResetTime(n === 'tokens_per_month' ? status.monthResetsAt : status.dayResetsAt, timeZone)}</td></tr>`;
  })}</tbody></table></div>
<p class="small text-body-secondary">Prompts from the chat and from the API count together. An answer that fails gives its prompt back; its tokens count as far as the model produced them. Tokens are counted as the model server reports them (about 4 characters a token when it does not).</p>`;
  return html`<h2 class="h5 mt-2" id="limits">Your limits</h2><p>${groupLine}</p>${table}`;
}
