import { controlError } from '../views/form-errors.ts';
import { csrfField } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

export interface ModelAccessView {
  csrfToken: string;
  modelId: number;
  restricted: boolean;
  groupIds: number[];
  groups: Array<{ id: number; name: string; memberCount: number }>;
  error?: string;
}

/** Who may use a model: everyone, or the members of the ticked groups (admins only through a group). */
export function modelAccessCard(v: ModelAccessView): SafeHtml {
  const ticked = new Set(v.groupIds);
  return html`<div class="card mt-3"><div class="card-body">
  <h2 class="h5 mb-3" id="access">Who may use it</h2>
  <form method="post" action="/admin/models/${v.modelId}/access" novalidate>
    ${csrfField(v.csrfToken)}
    <div class="form-check"><input class="form-check-input" type="radio" name="access" id="f-access-everyone" value="everyone"${v.restricted ? '' : html` checked`}>
      <label class="form-check-label" for="f-access-everyone">Everyone</label></div>
    <div class="form-check mb-2"><input class="form-check-input" type="radio" name="access" id="f-access-groups" value="groups"${v.restricted ? html` checked` : ''} aria-describedby="f-access-help${v.error ? ' access-error' : ''}">
      <label class="form-check-label" for="f-access-groups">Only the members of these groups</label></div>
    ${
      v.groups.length === 0
        ? html`<p class="small text-body-secondary ms-4">No group exists yet: <a href="/admin/groups">create one</a> first.</p>`
        : html`<fieldset class="ms-4 mb-2"><legend class="visually-hidden">Groups</legend>${v.groups.map(
            (
              g,
            ) => html`<div class="form-check"><input class="form-check-input" type="checkbox" name="group_ids" value="${g.id}" id="f-group-${g.id}"${ticked.has(g.id) ? html` checked` : ''}>
          <label class="form-check-label text-break" for="f-group-${g.id}">${g.name} <span class="text-body-secondary small">(${g.memberCount.toLocaleString('en-US')} members)</span></label></div>`,
          )}</fieldset>`
    }
    <div class="form-text mb-2" id="f-access-help">Admins are not exempt: they use a restricted model through a group like everyone else. Chats with a model someone may no longer use stay readable to them, but take no new prompts.</div>
    ${controlError('access-error', v.error)}
    <button class="btn btn-sm btn-primary" type="submit">Save access</button>
  </form>
</div></div>`;
}
