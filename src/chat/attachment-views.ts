import { html, type SafeHtml } from '../views/html.ts';
import type { AttachmentSummary } from './attachment-queries.ts';
import { formatBytes, MAX_ATTACHMENTS } from './attachment-rules.ts';
import { iconFile, iconPaperclip, iconX } from './chat-icons.ts';

export const attachmentUrl = (chatId: number, id: number) => `/api/chats/${chatId}/attachments/${id}`;

/*
 * The markup of a prompt's files, here once: the page renders it for stored prompts, and web/chat/attachments.ts
 * clones the templates below for a prompt it sends (filling in text with textContent, links and sources as properties).
 */

function imageThumb(url: string, name: string): SafeHtml {
  return html`<a class="prompt-image" href="${url}" target="_blank" rel="noopener" title="${name}"><img src="${url}" alt="${name}" loading="lazy" decoding="async"></a>`;
}

function fileChip(url: string, name: string, bytes: number): SafeHtml {
  return html`<a class="file-chip" href="${url}" download="${name}" title="${name}">${iconFile()}<span class="file-chip-name">${name}</span><span class="file-chip-size">${formatBytes(bytes)}</span></a>`;
}

/** A stored prompt's files: image thumbnails, then chips for text files (each opens or downloads the file). */
export function promptFilesView(chatId: number, files: AttachmentSummary[] | undefined): SafeHtml {
  if (!files || files.length === 0) return html``;
  const images = files.filter((f) => f.kind === 'image');
  const texts = files.filter((f) => f.kind === 'text');
  return html`<div class="prompt-files">${images.map((f) => imageThumb(attachmentUrl(chatId, f.id), f.name))}${texts.map((f) => fileChip(attachmentUrl(chatId, f.id), f.name, f.bytes))}</div>`;
}

/** The composer's paperclip and its (hidden) file input, and the row where chosen files show before sending. */
export function attachButton(): SafeHtml {
  return html`<button type="button" class="btn composer-attach" id="attach" aria-label="Attach files" title="Attach files or images (up to ${MAX_ATTACHMENTS})">${iconPaperclip()}</button>
    <input type="file" id="attach-input" multiple hidden tabindex="-1" aria-hidden="true">`;
}

export function pendingFilesRow(): SafeHtml {
  return html`<ul class="pending-files" id="pending-files" aria-label="Files to send" hidden></ul>
  <div class="upload-progress" id="upload-progress" hidden><div class="progress" role="progressbar" aria-label="Upload" aria-valuemin="0" aria-valuemax="100"><div class="progress-bar"></div></div></div>`;
}

/** Templates the browser clones: a chosen file in the composer, and a sent prompt's files (as promptFilesView). */
export function attachmentTemplates(): SafeHtml {
  return html`<template id="tpl-pending-file"><li class="pending-file"><img class="pending-file-thumb" alt="" hidden><span class="pending-file-icon">${iconFile()}</span><span class="pending-file-name"></span><span class="pending-file-size"></span><button type="button" class="btn pending-file-remove" aria-label="Remove">${iconX()}</button></li></template>
<template id="tpl-prompt-files"><div class="prompt-files"></div></template>
<template id="tpl-prompt-image">${imageThumb('', '')}</template>
<template id="tpl-file-chip">${fileChip('', '', 0)}</template>
<div class="drop-overlay" id="drop-overlay" hidden><div class="drop-overlay-text">${iconPaperclip()} Drop files or images to attach them</div></div>`;
}
