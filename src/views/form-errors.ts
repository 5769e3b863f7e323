import { html, type SafeHtml } from './html.ts';

/**
 * A refusal's message beside a control that is not a text field (a select, a row's buttons, a card of actions):
 * Bootstrap's invalid-feedback shown regardless of a sibling `.is-invalid`, announced by screen readers (role=alert),
 * with an id the control points at through aria-describedby. Nothing when there is no message.
 */
export function controlError(id: string, message: string | undefined): SafeHtml {
  return message ? html`<div class="invalid-feedback d-block" id="${id}" role="alert">${message}</div>` : html``;
}
