import { assetUrl } from './assets.ts';
import { html, type SafeHtml } from './html.ts';

export type FlashKind = 'success' | 'info' | 'warning' | 'danger';
export interface Flash {
  kind: FlashKind;
  text: string;
}

/** What every page needs to know about the visitor; built by the request context, never from the session cookie alone. */
export interface PageContext {
  appName: string;
  csrfToken: string;
  user: { id: number; username: string; isAdmin: boolean } | null;
  flashes: Flash[];
  path: string;
}

export interface PageOptions {
  title: string;
  body: SafeHtml;
  scripts?: string[];
  /** Extra stylesheets from our origin, after app.css. */
  styles?: string[];
  /** Pages like the chat use the full width and height of the window. */
  fluid?: boolean;
}

function navLink(ctx: PageContext, href: string, label: string, except?: string): SafeHtml {
  const active = ctx.path === href || (ctx.path.startsWith(`${href}/`) && ctx.path !== except);
  return html`<li class="nav-item"><a class="nav-link${active ? ' active' : ''}" ${active ? html`aria-current="page"` : ''} href="${href}">${label}</a></li>`;
}

function navbar(ctx: PageContext): SafeHtml {
  const user = ctx.user;
  return html`<nav class="navbar navbar-expand-md border-bottom bg-body-tertiary">
  <div class="container-fluid">
    <a class="navbar-brand fw-semibold" href="/">${ctx.appName}</a>
    ${
      user
        ? html`<button class="navbar-toggler" type="button" data-bs-toggle="collapse" data-bs-target="#nav" aria-controls="nav" aria-expanded="false" aria-label="Menu"><span class="navbar-toggler-icon"></span></button>
    <div class="collapse navbar-collapse" id="nav">
      <ul class="navbar-nav me-auto">
        ${navLink(ctx, '/chat', 'Chat')}
        ${user.isAdmin ? navLink(ctx, '/admin/users', 'Users') : ''}
        ${user.isAdmin ? navLink(ctx, '/admin/groups', 'Groups') : ''}
        ${user.isAdmin ? navLink(ctx, '/admin/models', 'Models') : ''}
        ${user.isAdmin ? navLink(ctx, '/admin/stats', 'Stats') : ''}
        ${navLink(ctx, '/settings/usage', 'My usage')}
        ${navLink(ctx, '/settings', 'Settings', '/settings/usage')}
      </ul>
      <span class="navbar-text me-3" data-testid="current-user">${user.username}${user.isAdmin ? html` <span class="badge text-bg-secondary">Admin</span>` : ''}</span>
      <form method="post" action="/logout" class="d-flex">
        <input type="hidden" name="_csrf" value="${ctx.csrfToken}">
        <button type="submit" class="btn btn-outline-light btn-sm">Sign out</button>
      </form>
    </div>`
        : ''
    }
  </div>
</nav>`;
}

/** A speech bubble in Bootstrap's primary blue; inline, so browsers stop asking for a /favicon.ico that does not exist. */
const favicon =
  "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><path fill='%230d6efd' d='M3 1h10a3 3 0 0 1 3 3v6a3 3 0 0 1-3 3H7l-4 3v-3a3 3 0 0 1-3-3V4a3 3 0 0 1 3-3z'/></svg>";

function flashes(ctx: PageContext): SafeHtml {
  return html`${ctx.flashes.map(
    (f) =>
      html`<div class="alert alert-${f.kind} alert-dismissible fade show" role="alert">${f.text}<button type="button" class="btn-close" data-bs-dismiss="alert" aria-label="Close"></button></div>`,
  )}`;
}

export function layout(ctx: PageContext, page: PageOptions): string {
  // confirm: every page's <form data-confirm> asks before it posts (web/confirm.ts).
  const scripts = ['/static/vendor/js/bootstrap.bundle.min.js', assetUrl('confirm'), ...(page.scripts ?? [])];
  return html`<!doctype html>
<html lang="en" data-bs-theme="dark">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="csrf-token" content="${ctx.csrfToken}">
  <title>${page.title} · ${ctx.appName}</title>
  <link rel="icon" href="${favicon}">
  <link rel="stylesheet" href="/static/vendor/css/bootstrap.min.css">
  <link rel="stylesheet" href="/static/app.css">
  ${(page.styles ?? []).map((href) => html`<link rel="stylesheet" href="${href}">`)}
  ${scripts.map((src) => html`<script src="${src}" defer${src.endsWith('.mjs') ? html` type="module"` : ''}></script>`)}
</head>
<body class="${page.fluid ? 'd-flex flex-column vh-100' : ''}">
  ${navbar(ctx)}
  ${page.fluid && ctx.flashes.length > 0 ? html`<div class="container-fluid pt-3">${flashes(ctx)}</div>` : ''}
  <main class="${page.fluid ? 'flex-grow-1 d-flex overflow-hidden' : 'container py-4'}">
    ${page.fluid ? '' : flashes(ctx)}
    ${page.body}
  </main>
</body>
</html>`.value;
}

/** A centered card, used by the sign-in, registration and error pages; `lead` is a line under the title. */
export function card(title: string, body: SafeHtml, lead?: string): SafeHtml {
  return html`<div class="row justify-content-center centered-card"><div class="col-md-6 col-lg-5">
  <div class="card shadow-sm"><div class="card-body p-4">
    <h1 class="h4 ${lead ? 'mb-1' : 'mb-3'}">${title}</h1>
    ${lead ? html`<p class="text-body-secondary mb-4">${lead}</p>` : ''}
    ${body}
  </div></div>
</div></div>`;
}
