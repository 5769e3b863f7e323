import { csrfField } from '../views/forms.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { IMPORT_MAX_BYTES } from './import-file.ts';

/**
 * Settings' "Export and import" card (the settings page shows it; app.ts hands it over, so settings imports no chat
 * code). The import form is posted by web/transfer.ts, which sends the CSRF token in a header (see transfer-routes.ts).
 */
export function chatTransferSection(csrfToken: string): SafeHtml {
  return html`<section class="card mb-4" id="transfer"><div class="card-body">
    <h2 class="h5 card-title">Export and import</h2>
    <p class="text-body-secondary small">Take your chats elsewhere, or bring them here from another Parley or from ChatGPT.</p>
    <h3 class="h6 mt-3">Export</h3>
    <p class="small mb-2">All your chats as one JSON file, with prompts, answers, models and dates. One chat at a time: the download button in the chat’s header.</p>
    <a class="btn btn-outline-primary" href="/settings/export" download data-testid="export-all">Export all chats</a>
    <h3 class="h6 mt-4">Import</h3>
    <form method="post" action="/settings/import" enctype="multipart/form-data" id="import-form" novalidate>
      ${csrfField(csrfToken)}
      <label class="form-label small" for="import-file">A Parley export, or ChatGPT’s <code>conversations.json</code> (in the zip of ChatGPT’s data export)</label>
      <div class="input-group">
        <input class="form-control" type="file" id="import-file" name="file" accept=".json,application/json" required aria-describedby="import-help">
        <button class="btn btn-primary" type="submit" id="import-submit">Import</button>
      </div>
      <div class="form-text" id="import-help">At most ${IMPORT_MAX_BYTES / 1024 / 1024} MiB. A file with a broken chat is refused whole. Imported chats keep their dates, are marked
        <span class="badge chat-imported-badge">imported</span> and do not count as usage.</div>
      <div class="alert alert-danger mt-3 mb-0" id="import-error" role="alert" hidden></div>
      <div class="text-body-secondary small mt-2" id="import-progress" role="status" aria-live="polite"></div>
    </form>
  </div></section>`;
}

/** Bootstrap Icons' "download" (MIT), as the chat's other icons (chat-icons.ts). */
const iconDownload = html`<svg class="bi" width="16" height="16" viewBox="0 0 16 16" fill="currentColor" aria-hidden="true" focusable="false"><path d="M.5 9.9a.5.5 0 0 1 .5.5v2.5a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-2.5a.5.5 0 0 1 1 0v2.5a2 2 0 0 1-2 2H2a2 2 0 0 1-2-2v-2.5a.5.5 0 0 1 .5-.5"/><path d="M7.646 11.854a.5.5 0 0 0 .708 0l3-3a.5.5 0 0 0-.708-.708L8.5 10.293V1.5a.5.5 0 0 0-1 0v8.793L5.354 8.146a.5.5 0 1 0-.708.708z"/></svg>`;

/** The chat header's export menu: plain download links (GET /api/chats/:id/export), no script needed. */
export function chatExportMenu(chatId: number): SafeHtml {
  return html`<div class="dropdown chat-export">
  <button type="button" class="btn btn-sm chat-header-button" data-bs-toggle="dropdown" aria-expanded="false" aria-label="Export this chat" title="Export this chat">${iconDownload}</button>
  <ul class="dropdown-menu dropdown-menu-end">
    <li><h3 class="dropdown-header">Export this chat</h3></li>
    <li><a class="dropdown-item" href="/api/chats/${chatId}/export?format=md" download>Markdown (.md)</a></li>
    <li><a class="dropdown-item" href="/api/chats/${chatId}/export?format=json" download>JSON (.json, can be imported again)</a></li>
  </ul>
</div>`;
}

/** The chat list's mark on a chat that came from a file (chat.is_imported). */
export const importedBadge = (): SafeHtml => html`<span class="badge chat-imported-badge" title="Imported from a file">imported</span>`;
