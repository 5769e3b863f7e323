import { html, type SafeHtml } from '../views/html.ts';
import { attachButton, attachmentTemplates, pendingFilesRow } from './attachment-views.ts';
import { iconArrowUp, iconPencil, iconPlus, iconSidebar, iconStop, iconTrash } from './chat-icons.ts';
import { instructionsPanel, instructionsToggle, promptEditorTemplate } from './chat-prompt-views.ts';
import { THINKING_PLACEHOLDER } from './chat-queries.ts';
import { newTurnTemplate, type TurnView, turnView } from './chat-turn-views.ts';
import { sidebarSearch } from './search-views.ts';
import { chatExportMenu, importedBadge } from './transfer-views.ts';

export type { ResponseStatus, ResponseView, TurnView } from './chat-turn-views.ts';

export interface ChatListItem {
  id: number;
  title: string;
  updatedAt: Date;
  /** Made by an import (Settings → Import): shown with a badge. */
  imported?: boolean;
}

export interface ModelOption {
  id: number;
  name: string;
}

export interface CurrentChat {
  id: number;
  title: string;
  modelId: number;
  modelName: string;
  modelAvailable: boolean;
  /** False when the model was restricted to groups this user is not in (migration 020); the chat stays readable. */
  modelAllowed?: boolean;
  /** The chat's own instructions (migration 026); null: none. */
  systemPrompt?: string | null;
  turns: TurnView[];
}

export interface ChatPageData {
  /** The user's chats, newest first. */
  chats: ChatListItem[];
  /** Enabled models for the picker. */
  models: ModelOption[];
  /** The picker's preselected model (the user's last-used one, else the admin's default…); see selectPreferredModelId. */
  preferredModelId: number | null;
  current: CurrentChat | null;
  maxPromptChars: number;
  /** About the user's usage limits, by the composer: how much is left under 10 %, or that a limit is reached. */
  usageNotice?: { reached: boolean; text: string } | null;
}

/** The rename dialog's limit; the API has the last word and its error is shown in the dialog. */
export const CHAT_TITLE_MAX_CHARS = 200;

/** Also the browser's template for chats it creates (web/chat/sidebar.ts fills in id and title). */
function chatItem(chat: { id: number; title: string; imported?: boolean }, active: boolean): SafeHtml {
  return html`<li class="chat-item${active ? ' active' : ''}" data-chat-id="${chat.id}">
  <a class="chat-link" href="/chat/${chat.id}" title="${chat.title}" ${active ? html`aria-current="page"` : ''}>${chat.title}</a>${chat.imported ? importedBadge() : ''}
  <div class="chat-item-actions">
    <button type="button" class="btn chat-item-action" data-bs-toggle="modal" data-bs-target="#rename-modal" aria-label="Rename chat">${iconPencil()}</button>
    <button type="button" class="btn chat-item-action" data-bs-toggle="modal" data-bs-target="#delete-modal" aria-label="Delete chat">${iconTrash()}</button>
  </div>
</li>`;
}

/** On wide screens a column; below the md breakpoint Bootstrap's responsive offcanvas turns it into a drawer. */
function sidebar(chats: ChatListItem[], currentId: number | null): SafeHtml {
  return html`<div class="chat-sidebar-wrap">
<aside class="chat-sidebar offcanvas-md offcanvas-start" tabindex="-1" id="chat-sidebar" aria-labelledby="chat-sidebar-title">
  <div class="offcanvas-header">
    <h2 class="offcanvas-title h6" id="chat-sidebar-title">Your chats</h2>
    <button type="button" class="btn-close" data-bs-dismiss="offcanvas" data-bs-target="#chat-sidebar" aria-label="Close"></button>
  </div>
  <div class="offcanvas-body chat-sidebar-body">
    <a class="btn chat-new" href="/chat" title="New chat (Ctrl+Shift+O)" aria-keyshortcuts="Control+Shift+O Meta+Shift+O">${iconPlus()} New chat</a>
    ${sidebarSearch()}
    <nav class="chat-list-nav" aria-label="Your chats">
      <ul class="chat-list" id="chat-list">${chats.map((c) => chatItem(c, c.id === currentId))}</ul>
      <p class="chat-list-empty" id="chat-list-empty" ${chats.length > 0 ? html`hidden` : ''}>No chats yet. Your conversations will appear here.</p>
    </nav>
  </div>
</aside>
</div>`;
}

/**
 * The model picker: on /chat it picks the new chat's model; in a chat it switches the chat's model for later answers
 * (PATCH /api/chats/:id, web/chat/model-switch.ts). A chat's model that is no longer usable stays shown, unselectable.
 */
function modelPicker(data: ChatPageData): SafeHtml {
  const current = data.current;
  const selectedId = current ? current.modelId : data.preferredModelId;
  const unavailable =
    current && (!current.modelAvailable || current.modelAllowed === false)
      ? html`<option value="${current.modelId}" disabled selected>${current.modelName} (unavailable)</option>`
      : '';
  if (data.models.length === 0 && !unavailable) return html``;
  return html`<label class="visually-hidden" for="model-select">Model</label>
    <select class="form-select form-select-sm chat-model-select" id="model-select">${unavailable}${data.models.map((m) => html`<option value="${m.id}"${m.id === selectedId ? html` selected` : ''}>${m.name}</option>`)}</select>`;
}

function header(data: ChatPageData): SafeHtml {
  const current = data.current;
  const model = modelPicker(data);
  return html`<header class="chat-header">
  <button type="button" class="btn btn-sm chat-sidebar-toggle d-md-none" data-bs-toggle="offcanvas" data-bs-target="#chat-sidebar" aria-controls="chat-sidebar" aria-label="Show your chats">${iconSidebar()}</button>
  <h1 class="chat-title" id="chat-title">${current ? current.title : 'New chat'}</h1>
  ${current || data.models.length > 0 ? instructionsToggle(current?.systemPrompt ?? null) : ''}
  ${model}
  ${current ? chatExportMenu(current.id) : ''}
</header>
${current || data.models.length > 0 ? instructionsPanel(current?.systemPrompt ?? null, current !== null) : ''}`;
}

function intro(data: ChatPageData): SafeHtml {
  if (data.current) return html``;
  if (data.models.length === 0) {
    return html`<div class="chat-intro" id="chat-intro">
  <h2 class="chat-intro-title">No models yet</h2>
  <p class="text-body-secondary mb-0">There is no model to chat with on this server yet. An administrator can add one under <strong>Models</strong>.</p>
</div>`;
  }
  return html`<div class="chat-intro" id="chat-intro">
  <h2 class="chat-intro-title">What can I help with?</h2>
  <p class="text-body-secondary mb-0">Pick a model above, then ask anything. Answers are written in Markdown, with code you can copy.</p>
</div>`;
}

function composer(data: ChatPageData): SafeHtml {
  const current = data.current;
  if (!current && data.models.length === 0) return html``;
  if (current && current.modelAllowed === false) {
    return html`<div class="chat-composer-wrap"><div class="chat-note" role="note" id="model-closed-note">
  You may not use <strong>${current.modelName}</strong> any more (an administrator made it available to some groups only).
  Pick another model above to continue this chat, or <a href="/chat">start a new chat</a>.
</div></div>`;
  }
  if (current && !current.modelAvailable) {
    return html`<div class="chat-composer-wrap"><div class="chat-note" role="note">
  The model of this chat, <strong>${current.modelName}</strong>, is no longer available. Pick another model above to
  continue this chat, or <a href="/chat">start a new chat</a>.
</div></div>`;
  }
  return html`<div class="chat-composer-wrap">
  <div class="alert alert-danger chat-alert" id="chat-alert" role="alert" hidden>
    <span id="chat-alert-text"></span>
    <button type="button" class="btn-close" id="chat-alert-close" aria-label="Dismiss"></button>
  </div>
  ${
    data.usageNotice
      ? html`<div class="alert ${data.usageNotice.reached ? 'alert-warning' : 'alert-info'} chat-usage-note py-2 mb-2" id="usage-note" role="status">${data.usageNotice.text} <a href="/settings/usage">Your usage</a></div>`
      : ''
  }
  ${pendingFilesRow()}
  <form class="composer" id="composer" novalidate>
    ${attachButton()}
    <label class="visually-hidden" for="prompt">Message</label>
    <textarea class="composer-input" id="prompt" name="content" rows="1" maxlength="${data.maxPromptChars}" placeholder="Message${current ? ` ${current.modelName}` : ''}…" autocomplete="off" autofocus></textarea>
    <button type="submit" class="btn btn-primary composer-send" id="send" aria-label="Send" title="Send (Enter)">${iconArrowUp('icon-send')}${iconStop('icon-stop')}</button>
  </form>
  <div class="composer-hint"><span>Enter to send, Shift+Enter for a new line, Esc to stop</span><span id="prompt-count" aria-live="polite"></span></div>
</div>`;
}

function renameModal(): SafeHtml {
  return html`<div class="modal fade" id="rename-modal" tabindex="-1" aria-labelledby="rename-modal-title" aria-hidden="true">
  <div class="modal-dialog modal-dialog-centered"><form class="modal-content" id="rename-form" novalidate>
    <div class="modal-header"><h2 class="modal-title fs-5" id="rename-modal-title">Rename chat</h2><button type="button" class="btn-close" data-bs-dismiss="modal" aria-label="Close"></button></div>
    <div class="modal-body">
      <label class="form-label" for="rename-input">Title</label>
      <input class="form-control" id="rename-input" name="title" maxlength="${CHAT_TITLE_MAX_CHARS}" required autocomplete="off" aria-describedby="rename-error">
      <div class="invalid-feedback" id="rename-error"></div>
    </div>
    <div class="modal-footer"><button type="button" class="btn btn-outline-secondary" data-bs-dismiss="modal">Cancel</button><button type="submit" class="btn btn-primary">Save</button></div>
  </form></div>
</div>`;
}

function deleteModal(): SafeHtml {
  return html`<div class="modal fade" id="delete-modal" tabindex="-1" aria-labelledby="delete-modal-title" aria-hidden="true">
  <div class="modal-dialog modal-dialog-centered"><form class="modal-content" id="delete-form" novalidate>
    <div class="modal-header"><h2 class="modal-title fs-5" id="delete-modal-title">Delete chat?</h2><button type="button" class="btn-close" data-bs-dismiss="modal" aria-label="Close"></button></div>
    <div class="modal-body">
      <p class="mb-0">“<strong id="delete-chat-title"></strong>” and all its messages will be deleted. This cannot be undone.</p>
      <div class="text-danger small mt-2" id="delete-error" role="alert"></div>
    </div>
    <div class="modal-footer"><button type="button" class="btn btn-outline-secondary" data-bs-dismiss="modal">Cancel</button><button type="submit" class="btn btn-danger">Delete</button></div>
  </form></div>
</div>`;
}

/** The chat UI: the body of GET /chat and GET /chat/:id, driven by /static/build/chat.mjs through the data-* attributes. */
export function chatPage(data: ChatPageData): SafeHtml {
  const current = data.current;
  const lastIndex = current ? current.turns.length - 1 : -1;
  const usable = current?.modelAvailable === true && current.modelAllowed !== false;
  const turns = current ? current.turns.map((t, i) => turnView(t, { chatId: current.id, canRegenerate: usable && i === lastIndex, canEdit: usable })) : [];
  return html`<div class="chat-app" id="chat" data-max-prompt="${data.maxPromptChars}" data-thinking-text="${THINKING_PLACEHOLDER}" ${current ? html`data-chat-id="${current.id}" data-model-name="${current.modelName}"` : ''}>
${sidebar(data.chats, current?.id ?? null)}
<section class="chat-main" aria-labelledby="chat-title">
  ${header(data)}
  <div class="chat-scroll" id="chat-scroll">
    ${intro(data)}
    <div class="chat-thread" id="chat-thread" aria-live="polite">${turns}</div>
  </div>
  ${composer(data)}
</section>
${renameModal()}
${deleteModal()}
${newTurnTemplate()}
${promptEditorTemplate(data.maxPromptChars)}
${attachmentTemplates()}
<template id="tpl-chat-item">${chatItem({ id: 0, title: '' }, false)}</template>
</div>`;
}
