import { html, type SafeHtml } from '../views/html.ts';
import { outcomeNote, SEARCH_QUERY_MAX_CHARS, SEARCH_RESULTS_MAX, type SearchHit, type SearchOutcome } from './chat-search.ts';
import { passageHtml } from './search-highlight.ts';

export interface SearchPageData {
  query: string;
  /** Null: nothing searched yet (an empty box) or the query was refused (`error`). */
  outcome: SearchOutcome | null;
  error: string | null;
}

/** The search box over the chat list (chat-views.ts); Ctrl/⌘+K focuses it (web/chat/search-shortcut.ts). */
export function sidebarSearch(): SafeHtml {
  return html`<form class="chat-search" role="search" action="/chat/search" method="get">
  <label class="visually-hidden" for="chat-search-q">Search your chats</label>
  <input type="search" class="form-control form-control-sm" id="chat-search-q" name="q" maxlength="${SEARCH_QUERY_MAX_CHARS}"
    placeholder="Search chats  (Ctrl+K)" title="Search your chats: titles, prompts and answers (Ctrl+K, ⌘K on a Mac)"
    aria-keyshortcuts="Control+K Meta+K" autocomplete="off" data-search-input>
</form>`;
}

function searchForm(data: SearchPageData): SafeHtml {
  return html`<form class="search-form" role="search" action="/chat/search" method="get">
  <label class="form-label visually-hidden" for="search-q">Search your chats</label>
  <div class="input-group">
    <input type="search" class="form-control${data.error ? ' is-invalid' : ''}" id="search-q" name="q" value="${data.query}"
      maxlength="${SEARCH_QUERY_MAX_CHARS}" placeholder="Words to find" autocomplete="off"
      aria-describedby="search-help${data.error ? ' search-error' : ''}" aria-keyshortcuts="Control+K Meta+K" data-search-input ${data.outcome ? '' : html`autofocus`}>
    <button type="submit" class="btn btn-primary">Search</button>
  </div>
  ${data.error ? html`<div class="invalid-feedback d-block" id="search-error" role="alert">${data.error}</div>` : ''}
  <p class="form-text mb-0" id="search-help">Finds chats whose title, prompts or answers hold all the words. <code>"quoted words"</code> match a phrase,
    <code>-word</code> leaves out chats with it, <code>or</code> takes either. <kbd>Ctrl</kbd>+<kbd>K</kbd> (<kbd>⌘</kbd><kbd>K</kbd>) comes back here.</p>
</form>`;
}

const dateFormat = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeZone: 'UTC' });

function hitItem(hit: SearchHit): SafeHtml {
  const title = hit.titleParts ? passageHtml(hit.titleParts) : (hit.title ?? 'New chat');
  return html`<li class="search-result">
  <a class="search-result-title" href="/chat/${hit.id}">${title}</a>
  <div class="search-result-meta"><time datetime="${hit.updatedAt.toISOString()}">${dateFormat.format(hit.updatedAt)}</time>${
    hit.passage ? html` · in ${hit.passage.source === 'prompt' ? 'a prompt' : 'an answer'}` : ''
  }</div>
  ${hit.passage ? html`<p class="search-passage">${hit.passage.cutBefore ? '… ' : ''}${passageHtml(hit.passage.parts)}${hit.passage.cutAfter ? ' …' : ''}</p>` : ''}
</li>`;
}

function results(data: SearchPageData): SafeHtml {
  const outcome = data.outcome;
  if (!outcome) return html``;
  const note = outcomeNote(outcome);
  if (note) return html`<p class="search-note" role="status">${note}</p>`;
  if (outcome.kind !== 'hits') return html``;
  if (outcome.hits.length === 0) return html`<p class="search-note" role="status">None of your chats match <strong>${data.query}</strong>.</p>`;
  const count =
    outcome.hits.length === SEARCH_RESULTS_MAX
      ? `The ${SEARCH_RESULTS_MAX} best matches; add a word to narrow the search.`
      : `${outcome.hits.length} ${outcome.hits.length === 1 ? 'chat matches' : 'chats match'}, best first.`;
  return html`<p class="search-count" role="status">${count}</p>
<ol class="search-results" id="search-results">${outcome.hits.map(hitItem)}</ol>`;
}

export function searchPage(data: SearchPageData): SafeHtml {
  return html`<div class="search-page">
  <p class="mb-2"><a href="/chat" class="link-secondary">← Your chats</a></p>
  <h1 class="h4 mb-3">Search your chats</h1>
  ${searchForm(data)}
  ${results(data)}
</div>`;
}
