import { html, type SafeHtml } from './html.ts';

export interface FieldOptions {
  name: string;
  label: string;
  type?: 'text' | 'email' | 'password' | 'url' | 'number';
  value?: string;
  error?: string;
  autocomplete?: string;
  required?: boolean;
  maxlength?: number;
  minlength?: number;
  help?: string;
  autofocus?: boolean;
  inputmode?: string;
}

/** A Bootstrap form row with its error next to the field (and aria-describedby, so screen readers read it too). */
export function field(o: FieldOptions): SafeHtml {
  const id = `f-${o.name}`;
  const describedBy = [o.error ? `${id}-error` : '', o.help ? `${id}-help` : ''].filter(Boolean).join(' ');
  return html`<div class="mb-3">
  <label class="form-label" for="${id}">${o.label}</label>
  <input class="form-control${o.error ? ' is-invalid' : ''}" id="${id}" name="${o.name}" type="${o.type ?? 'text'}"
    ${o.value !== undefined && o.type !== 'password' ? html`value="${o.value}"` : ''}
    ${o.autocomplete ? html`autocomplete="${o.autocomplete}"` : ''}
    ${o.maxlength ? html`maxlength="${o.maxlength}"` : ''} ${o.minlength ? html`minlength="${o.minlength}"` : ''}
    ${o.inputmode ? html`inputmode="${o.inputmode}"` : ''}
    ${o.required === false ? '' : html`required`} ${o.autofocus ? html`autofocus` : ''}
    ${describedBy ? html`aria-describedby="${describedBy}"` : ''}>
  ${o.error ? html`<div class="invalid-feedback" id="${id}-error">${o.error}</div>` : ''}
  ${o.help ? html`<div class="form-text" id="${id}-help">${o.help}</div>` : ''}
</div>`;
}

export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

export function formAlert(message: string | undefined): SafeHtml {
  return message ? html`<div class="alert alert-danger" role="alert">${message}</div>` : html``;
}
