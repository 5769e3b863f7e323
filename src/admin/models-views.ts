import type { ModelSummary } from '../llm/llm-queries.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

export type FieldErrors = Partial<Record<string, string>>;

export interface ModelFormValues {
  name?: string;
  baseUrl?: string;
  model?: string;
  enabled?: boolean;
}

export interface ModelsPageView {
  csrfToken: string;
  models: ModelSummary[];
  values?: ModelFormValues;
  errors?: FieldErrors;
}

export interface EditModelView {
  csrfToken: string;
  model: ModelSummary;
  values: ModelFormValues;
  errors?: FieldErrors;
}

function status(m: ModelSummary): SafeHtml {
  if (m.baseUrl === null) return html`<span class="badge text-bg-warning">Needs a base URL</span>`;
  return m.enabled ? html`<span class="badge text-bg-success">Enabled</span>` : html`<span class="badge text-bg-secondary">Disabled</span>`;
}

function postButton(csrfToken: string, action: string, label: string, style: string): SafeHtml {
  return html`<form method="post" action="${action}" class="d-inline">${csrfField(csrfToken)}<button type="submit" class="btn btn-sm ${style}">${label}</button></form>`;
}

function row(csrfToken: string, m: ModelSummary): SafeHtml {
  const base = `/admin/models/${m.id}`;
  return html`<tr data-model-id="${m.id}">
  <td class="fw-semibold">${m.name}</td>
  <td><code>${m.model ?? ''}</code></td>
  <td class="text-break">${m.baseUrl ?? html`<span class="text-body-secondary">none</span>`}</td>
  <td>${m.hasApiKey ? 'set' : html`<span class="text-body-secondary">not set</span>`}</td>
  <td>${status(m)}</td>
  <td class="text-end">${m.chatCount}</td>
  <td class="text-end text-nowrap">
    <a class="btn btn-sm btn-outline-light" href="${base}/edit">Edit</a>
    ${m.baseUrl === null ? '' : postButton(csrfToken, `${base}/test`, 'Test connection', 'btn-outline-info')}
    ${m.enabled ? postButton(csrfToken, `${base}/disable`, 'Disable', 'btn-outline-warning') : postButton(csrfToken, `${base}/enable`, 'Enable', 'btn-outline-success')}
    ${postButton(csrfToken, `${base}/delete`, m.chatCount > 0 ? 'Delete (disables: has chats)' : 'Delete', 'btn-outline-danger')}
  </td>
</tr>`;
}

function modelsTable(csrfToken: string, models: ModelSummary[]): SafeHtml {
  if (models.length === 0) {
    return html`<p class="text-body-secondary">No model is connected yet. Add one below: users can chat once at least one is enabled.</p>`;
  }
  return html`<div class="table-responsive mb-4"><table class="table table-sm align-middle">
  <thead><tr><th scope="col">Name</th><th scope="col">Model id</th><th scope="col">Base URL</th><th scope="col">API key</th><th scope="col">Status</th><th scope="col" class="text-end">Chats</th><th scope="col" class="text-end">Actions</th></tr></thead>
  <tbody>${models.map((m) => row(csrfToken, m))}</tbody>
</table></div>`;
}

/** The fields shared by the add and edit forms. The API key field is never filled in: the key never goes back to a browser. */
function modelFields(values: ModelFormValues, errors: FieldErrors, keyHelp: string): SafeHtml {
  return html`${field({ name: 'name', label: 'Name', value: values.name, error: errors.name, maxlength: 100, help: 'What users see in the model picker.' })}
  ${field({
    name: 'baseUrl',
    label: 'Base URL',
    type: 'url',
    value: values.baseUrl,
    error: errors.baseUrl,
    maxlength: 2000,
    help: 'The OpenAI-compatible API root, e.g. http://localhost:11434/v1 (Ollama) or https://api.openai.com/v1.',
  })}
  ${field({ name: 'apiKey', label: 'API key', type: 'password', error: errors.apiKey, required: false, autocomplete: 'off', maxlength: 1000, help: keyHelp })}
  ${field({ name: 'model', label: 'Model id', value: values.model, error: errors.model, maxlength: 200, help: 'As the server names it, e.g. llama3.1:8b or gpt-4o-mini.' })}
  <div class="form-check mb-3">
    <input class="form-check-input" type="checkbox" id="f-enabled" name="enabled" value="on"${values.enabled === false ? '' : html` checked`}>
    <label class="form-check-label" for="f-enabled">Enabled (users can pick it)</label>
  </div>`;
}

export function modelsPage(v: ModelsPageView): SafeHtml {
  const errors = v.errors ?? {};
  return html`<h1 class="h4 mb-3">Models</h1>
${modelsTable(v.csrfToken, v.models)}
<div class="card"><div class="card-body">
  <h2 class="h5 mb-3" id="add-model">Add a model</h2>
  ${formAlert(Object.keys(errors).length > 0 ? 'The model was not added: see the messages below.' : undefined)}
  <form method="post" action="/admin/models" novalidate>
    ${csrfField(v.csrfToken)}
    ${modelFields(v.values ?? {}, errors, 'Optional: local servers such as Ollama need none. Stored encrypted, never shown again.')}
    <button class="btn btn-primary" type="submit">Add model</button>
  </form>
</div></div>`;
}

export function editModelPage(v: EditModelView): SafeHtml {
  const errors = v.errors ?? {};
  const keyHelp = v.model.hasApiKey
    ? 'A key is stored. Leave empty to keep it, or type a new one to replace it. If you point the base URL at another server (scheme, host or port), the stored key is removed unless you enter it again.'
    : 'No key is stored. Optional.';
  return html`<h1 class="h4 mb-3">Edit model “${v.model.name}”</h1>
<div class="card"><div class="card-body">
  ${formAlert(Object.keys(errors).length > 0 ? 'Nothing was changed: see the messages below.' : undefined)}
  <form method="post" action="/admin/models/${v.model.id}" novalidate>
    ${csrfField(v.csrfToken)}
    ${modelFields(v.values, errors, keyHelp)}
    ${
      v.model.hasApiKey
        ? html`<div class="form-check mb-3">
      <input class="form-check-input" type="checkbox" id="f-removeApiKey" name="removeApiKey" value="on">
      <label class="form-check-label" for="f-removeApiKey">Remove the stored API key</label>
    </div>`
        : ''
    }
    <button class="btn btn-primary" type="submit">Save</button>
    <a class="btn btn-outline-light" href="/admin/models">Cancel</a>
  </form>
</div></div>`;
}
