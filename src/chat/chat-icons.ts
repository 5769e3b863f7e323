import { html, type SafeHtml } from '../views/html.ts';

/**
 * The few icons the chat needs, as inline SVG (paths from Bootstrap Icons, MIT): no icon font to ship, and
 * `currentColor` follows the theme. aria-hidden because every button carrying one also has a text label.
 */
function icon(path: SafeHtml, extraClass = ''): SafeHtml {
  return html`<svg class="bi${extraClass ? ` ${extraClass}` : ''}" width="16" height="16" viewBox="0 0 16 16" fill="currentColor" aria-hidden="true" focusable="false">${path}</svg>`;
}

export const iconPlus = (): SafeHtml =>
  icon(
    html`<path d="M8 2a.75.75 0 0 1 .75.75v4.5h4.5a.75.75 0 0 1 0 1.5h-4.5v4.5a.75.75 0 0 1-1.5 0v-4.5h-4.5a.75.75 0 0 1 0-1.5h4.5v-4.5A.75.75 0 0 1 8 2"/>`,
  );

export const iconArrowUp = (extraClass = ''): SafeHtml =>
  icon(
    html`<path fill-rule="evenodd" d="M8 15a.75.75 0 0 1-.75-.75V3.56L3.53 7.28a.75.75 0 0 1-1.06-1.06l5-5a.75.75 0 0 1 1.06 0l5 5a.75.75 0 1 1-1.06 1.06L8.75 3.56v10.69A.75.75 0 0 1 8 15"/>`,
    extraClass,
  );

export const iconStop = (extraClass = ''): SafeHtml => icon(html`<rect x="3.5" y="3.5" width="9" height="9" rx="1.5"/>`, extraClass);

export const iconPencil = (): SafeHtml =>
  icon(
    html`<path d="M12.15.85a1.5 1.5 0 0 1 2.12 0l.88.88a1.5 1.5 0 0 1 0 2.12l-9.5 9.5a1 1 0 0 1-.47.26l-3.5.88a.5.5 0 0 1-.6-.6l.87-3.5a1 1 0 0 1 .27-.47zm-.7 2.12L3.1 11.32l-.45 1.8 1.8-.45 8.35-8.35z"/>`,
  );

export const iconTrash = (): SafeHtml =>
  icon(
    html`<path d="M6.5 1h3a1 1 0 0 1 1 1v1h3a.5.5 0 0 1 0 1h-.54l-.82 9.86A1.25 1.25 0 0 1 10.9 15H5.1a1.25 1.25 0 0 1-1.24-1.14L3.04 4H2.5a.5.5 0 0 1 0-1h3V2a1 1 0 0 1 1-1m0 2h3V2h-3zM4.05 4l.8 9.78a.25.25 0 0 0 .25.22h5.8a.25.25 0 0 0 .25-.22L11.95 4zM6.5 5.5a.5.5 0 0 1 .5.5v6a.5.5 0 0 1-1 0V6a.5.5 0 0 1 .5-.5m3 0a.5.5 0 0 1 .5.5v6a.5.5 0 0 1-1 0V6a.5.5 0 0 1 .5-.5"/>`,
  );

export const iconSidebar = (): SafeHtml =>
  icon(
    html`<path d="M0 3a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H2a2 2 0 0 1-2-2zm5-1v12h9a1 1 0 0 0 1-1V3a1 1 0 0 0-1-1zM4 2H2a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h2z"/>`,
  );

export const iconRetry = (): SafeHtml =>
  icon(
    html`<path d="M8 2.5a5.5 5.5 0 1 0 5.5 5.5.75.75 0 0 1 1.5 0A7 7 0 1 1 8 1a6.97 6.97 0 0 1 4.95 2.05V1.75a.75.75 0 0 1 1.5 0v3.5a.75.75 0 0 1-.75.75h-3.5a.75.75 0 0 1 0-1.5h1.76A5.48 5.48 0 0 0 8 2.5"/>`,
  );

export const iconSpark = (): SafeHtml =>
  icon(
    html`<path d="M8 0l1.55 4.7a2.5 2.5 0 0 0 1.75 1.75L16 8l-4.7 1.55a2.5 2.5 0 0 0-1.75 1.75L8 16l-1.55-4.7a2.5 2.5 0 0 0-1.75-1.75L0 8l4.7-1.55A2.5 2.5 0 0 0 6.45 4.7z"/>`,
  );

export const iconInstructions = (): SafeHtml =>
  icon(
    html`<path d="M2 3.25A.75.75 0 0 1 2.75 2.5h10.5a.75.75 0 0 1 0 1.5H2.75A.75.75 0 0 1 2 3.25m0 4.75a.75.75 0 0 1 .75-.75h10.5a.75.75 0 0 1 0 1.5H2.75A.75.75 0 0 1 2 8m.75 4a.75.75 0 0 0 0 1.5h6.5a.75.75 0 0 0 0-1.5z"/>`,
  );

export const iconPaperclip = (): SafeHtml =>
  icon(
    html`<path d="M4.5 3a2.5 2.5 0 0 1 5 0v9a1.5 1.5 0 0 1-3 0V5a.5.5 0 0 1 1 0v7a.5.5 0 0 0 1 0V3a1.5 1.5 0 1 0-3 0v9a2.5 2.5 0 0 0 5 0V5a.5.5 0 0 1 1 0v7a3.5 3.5 0 1 1-7 0z"/>`,
  );

export const iconFile = (): SafeHtml =>
  icon(
    html`<path d="M14 4.5V14a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V2a2 2 0 0 1 2-2h5.5zm-3 0A1.5 1.5 0 0 1 9.5 3V1H4a1 1 0 0 0-1 1v12a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1V4.5z"/>`,
  );

export const iconX = (): SafeHtml =>
  icon(
    html`<path d="M4.646 4.646a.5.5 0 0 1 .708 0L8 7.293l2.646-2.647a.5.5 0 0 1 .708.708L8.707 8l2.647 2.646a.5.5 0 0 1-.708.708L8 8.707l-2.646 2.647a.5.5 0 0 1-.708-.708L7.293 8 4.646 5.354a.5.5 0 0 1 0-.708"/>`,
  );
