import { SYSTEM_PROMPT_MAX_CHARS } from '../llm/system-prompt.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { iconInstructions, iconPencil } from './chat-icons.ts';

/*
 * The chat page's controls for what the model is told: the chat's own instructions (its system prompt, migration 026)
 * and editing a sent prompt. web/chat/instructions.ts and web/chat/prompt-edit.ts drive them; the browser clones
 * the templates below rather than building the markup a second time.
 */

/** The header button that opens the instructions panel; `data-set` marks a chat that has some. */
export function instructionsToggle(systemPrompt: string | null): SafeHtml {
  return html`<button type="button" class="btn btn-sm chat-instructions-toggle" id="instructions-toggle" data-bs-toggle="collapse" data-bs-target="#chat-instructions"
    aria-expanded="false" aria-controls="chat-instructions" title="Instructions for this chat"${systemPrompt ? html` data-set` : ''}>${iconInstructions()}<span class="chat-instructions-label">Instructions</span></button>`;
}

/**
 * The chat's own system prompt, under the header. On /chat (no chat yet) what is typed is saved with the chat when
 * the first message creates it.
 */
export function instructionsPanel(systemPrompt: string | null, chatExists: boolean): SafeHtml {
  return html`<div class="collapse chat-instructions" id="chat-instructions">
  <form class="chat-instructions-form" id="instructions-form" novalidate>
    <label class="form-label" for="instructions-input">Instructions for this chat</label>
    <textarea class="form-control" id="instructions-input" name="system_prompt" rows="3" maxlength="${SYSTEM_PROMPT_MAX_CHARS}"
      placeholder="For example: Answer in French. Keep answers short." aria-describedby="instructions-help instructions-status">${systemPrompt ?? ''}</textarea>
    <div class="chat-instructions-footer">
      <div class="form-text" id="instructions-help">Sent to the model before the conversation, with every message${chatExists ? ' of this chat' : ' of the new chat'}.</div>
      <span class="chat-instructions-status" id="instructions-status" role="status" aria-live="polite"></span>
      <button type="submit" class="btn btn-sm btn-primary">Save</button>
    </div>
  </form>
</div>`;
}

/** The Edit button under a sent prompt (also in the browser's template for the turns it adds). */
export function editPromptButton(): SafeHtml {
  return html`<button type="button" class="btn btn-sm answer-action prompt-edit" data-action="edit-prompt" title="Edit this message and send it again">${iconPencil()}<span class="answer-action-label">Edit</span></button>`;
}

/** The editor that takes the place of a prompt's bubble while it is edited. */
export function promptEditorTemplate(maxPromptChars: number): SafeHtml {
  return html`<template id="tpl-prompt-editor"><form class="prompt-editor" novalidate>
  <label class="visually-hidden" for="prompt-editor-input">Edit your message</label>
  <textarea class="form-control prompt-editor-input" id="prompt-editor-input" rows="3" maxlength="${maxPromptChars}"></textarea>
  <div class="prompt-editor-footer">
    <span class="prompt-editor-note">The later messages and answers of this chat will be removed.</span>
    <button type="button" class="btn btn-sm btn-outline-light" data-action="cancel-edit">Cancel</button>
    <button type="submit" class="btn btn-sm btn-primary">Save &amp; send</button>
  </div>
</form></template>`;
}
