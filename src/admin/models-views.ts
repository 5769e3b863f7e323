import type { ModelSummary } from '../llm/llm-queries.ts';
import { SYSTEM_PROMPT_MAX_CHARS } from '../llm/system-prompt.ts';
import { csrfField, field, formAlert } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';

export type FieldErrors = Partial<Record<string, string>>;

export interface ModelFormValues {
  name?: string;
  baseUrl?: string;
  model?: string;
  enabled?: boolean;
  systemPrompt?: string;
  vision?: boolean;
}

export interface ModelsPageView {
  csrfToken: string;
  models: ModelSummary[];
  values?: ModelFormValues;
  errors?: FieldErrors;
  /** A refused row action (the model is gone), shown above the list. */
  problem?: string;
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

const when = (d: Date): SafeHtml => html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;

/** The last check and the last failure (docs/decisions/010: what counts as health). */
function health(m: ModelSummary): SafeHtml {
  const h = m.health;
  const lastError =
    h.lastError !== null && h.lastErrorAt !== null ? html`<div class="small text-body-secondary">Last error ${when(h.lastErrorAt)}: ${h.lastError}</div>` : '';
  if (h.healthy === null || h.checkedAt === null) {
    return m.baseUrl === null ? html`<span class="text-body-secondary">—</span>` : html`<span class="badge text-bg-secondary">Not tested</span>`;
  }
  if (h.healthy) {
    const seen = h.source === 'test' ? 'Test passed' : 'Answering since';
    return html`<span class="badge text-bg-success">OK</span> <span class="small text-body-secondary">${seen} ${when(h.checkedAt)}</span>${lastError}`;
  }
  const seen = h.source === 'test' ? 'Test failed' : 'An answer failed';
  return html`<span class="badge text-bg-danger">Failing</span>
    <div class="small">${seen} ${when(h.checkedAt)}: ${h.lastError ?? 'no reason given'}</div>`;
}

/** The host on one line, the scheme (unless https) and path below it, the whole URL as a tooltip: a long URL stays two short lines. */
function server(baseUrl: string | null): SafeHtml {
  if (baseUrl === null) return html`<span class="text-body-secondary">none</span>`;
  let host = baseUrl;
  let rest = '';
  try {
    const url = new URL(baseUrl);
    host = url.host;
    const path = `${url.pathname}${url.search}`;
    // Plain http is worth a glance (keys travel in clear), so it is said; https is the norm and goes unsaid.
    rest = [url.protocol === 'https:' ? '' : url.protocol.slice(0, -1), path === '/' ? '' : path].filter(Boolean).join(' · ');
  } catch {
    // Stored before validation existed (adopted rows): shown as it is.
  }
  return html`<span class="text-break" title="${baseUrl}">${host}</span>${rest ? html`<div class="small text-body-secondary text-break">${rest}</div>` : ''}`;
}

const chats = (n: number) => `${n} chat${n === 1 ? '' : 's'}`;

interface PostButton {
  action: string;
  label: string;
  style: string;
  /** The question web/confirm.ts asks before posting (contracts: data-confirm), naming the model and what happens. */
  confirm?: { message: string; button: string };
}

function postButton(csrfToken: string, b: PostButton): SafeHtml {
  const confirm = b.confirm ? html` data-confirm="${b.confirm.message}" data-confirm-button="${b.confirm.button}"` : '';
  return html`<form method="post" action="${b.action}" class="d-inline"${confirm}>${csrfField(csrfToken)}<button type="submit" class="btn btn-sm ${b.style}">${b.label}</button></form>`;
}

function actions(csrfToken: string, m: ModelSummary): SafeHtml {
  const base = `/admin/models/${m.id}`;
  const disable: PostButton = { action: `${base}/disable`, label: 'Disable', style: 'btn-outline-warning' };
  if (m.chatCount > 0) {
    disable.confirm = { message: `Disable “${m.name}”? Users can no longer pick it, and its ${chats(m.chatCount)} become read-only.`, button: 'Disable' };
  }
  const remove: PostButton =
    m.chatCount > 0
      ? {
          action: `${base}/delete`,
          label: 'Delete (disables: has chats)',
          style: 'btn-outline-danger',
          confirm: {
            message: `“${m.name}” has ${chats(m.chatCount)}, so it is disabled instead of deleted: users can no longer pick it, and its chats stay readable.`,
            button: 'Disable',
          },
        }
      : {
          action: `${base}/delete`,
          label: 'Delete',
          style: 'btn-outline-danger',
          confirm: { message: `Delete “${m.name}”? This cannot be undone.`, button: 'Delete' },
        };
  return html`<div class="d-flex flex-wrap gap-1 justify-content-end">
    <a class="btn btn-sm btn-outline-light" href="${base}/edit">Edit</a>
    ${m.baseUrl === null ? '' : postButton(csrfToken, { action: `${base}/test`, label: 'Test connection', style: 'btn-outline-info' })}
    ${m.enabled ? postButton(csrfToken, disable) : postButton(csrfToken, { action: `${base}/enable`, label: 'Enable', style: 'btn-outline-success' })}
    ${m.enabled && m.baseUrl !== null && !m.isDefault ? postButton(csrfToken, { action: `${base}/default`, label: 'Make default', style: 'btn-outline-secondary' }) : ''}
    ${postButton(csrfToken, remove)}
  </div>`;
}

function row(csrfToken: string, m: ModelSummary): SafeHtml {
  return html`<tr data-model-id="${m.id}">
  <td class="fw-semibold" data-label="Name">${m.name}${m.isDefault ? html` <span class="badge text-bg-primary">Default</span>` : ''}</td>
  <td data-label="Model id"><code class="text-break">${m.model ?? ''}</code></td>
  <td data-label="Server">${server(m.baseUrl)}</td>
  <td data-label="API key">${m.hasApiKey ? 'set' : html`<span class="text-body-secondary">not set</span>`}</td>
  <td data-label="Status">${status(m)}${m.vision ? html` <span class="badge text-bg-info" title="Takes images">Vision</span>` : ''}</td>
  <td data-label="Health">${health(m)}</td>
  <td class="text-end" data-label="Chats">${m.chatCount}</td>
  <td class="text-end">${actions(csrfToken, m)}</td>
</tr>`;
}

function modelsTable(csrfToken: string, models: ModelSummary[]): SafeHtml {
  if (models.length === 0) {
    return html`<p class="text-body-secondary">No model is connected yet. Add one below: users can chat once at least one is enabled.</p>`;
  }
  return html`<p class="text-body-secondary small">A new chat starts with the model the user last chatted with, else the default, else the first
  in this list; a model whose last test or answer failed to connect is picked only when nothing else is enabled.</p>
<div class="table-responsive mb-4"><table class="table table-sm align-middle table-stack">
  <thead><tr class="text-nowrap"><th scope="col">Name</th><th scope="col">Model id</th><th scope="col">Server</th><th scope="col">API key</th><th scope="col">Status</th><th scope="col">Health</th><th scope="col" class="text-end">Chats</th><th scope="col" class="text-end">Actions</th></tr></thead>
  <tbody>${models.map((m) => row(csrfToken, m))}</tbody>
</table></div>`;
}

/** The admin's instructions for the model: a textarea, which forms.ts's field() does not make. */
function systemPromptField(value: string | undefined, error: string | undefined): SafeHtml {
  return html`<div class="mb-3">
  <label class="form-label" for="f-system_prompt">System prompt <span class="text-body-secondary">(optional)</span></label>
  <textarea class="form-control${error ? ' is-invalid' : ''}" id="f-system_prompt" name="system_prompt" rows="3" maxlength="${SYSTEM_PROMPT_MAX_CHARS}"
    aria-describedby="${error ? 'f-system_prompt-error ' : ''}f-system_prompt-help">${value ?? ''}</textarea>
  ${error ? html`<div class="invalid-feedback" id="f-system_prompt-error">${error}</div>` : ''}
  <div class="form-text" id="f-system_prompt-help">Sent to the model first in every chat with it, before the chat's own instructions; users do not see it. At most ${SYSTEM_PROMPT_MAX_CHARS.toLocaleString('en')} characters.</div>
</div>`;
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
  ${systemPromptField(values.systemPrompt, errors.system_prompt)}
  <div class="form-check mb-3">
    <input class="form-check-input" type="checkbox" id="f-enabled" name="enabled" value="on"${values.enabled === false ? '' : html` checked`}>
    <label class="form-check-label" for="f-enabled">Enabled (users can pick it)</label>
  </div>
  <div class="form-check mb-3">
    <input class="form-check-input" type="checkbox" id="f-vision" name="vision" value="on" aria-describedby="f-vision-help"${values.vision ? html` checked` : ''}>
    <label class="form-check-label" for="f-vision">Vision (takes images)</label>
    <div class="form-text" id="f-vision-help">Users may send images to it with a prompt. Tick only if the model reads images (GPT-4o, Llama 3.2 Vision, LLaVA…): others answer every such prompt with an error.</div>
  </div>`;
}

export function modelsPage(v: ModelsPageView): SafeHtml {
  const errors = v.errors ?? {};
  return html`<h1 class="h4 mb-3">Models</h1>
${formAlert(v.problem)}
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
