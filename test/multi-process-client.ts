/**
 * A browser over real HTTP for tests that run several server processes: it keeps its cookies and the CSRF token of
 * the last page it loaded, and can send each request to any of the processes — as a load balancer without sticky
 * sessions would. `ip` goes out as X-Forwarded-For (the servers run with TRUST_PROXY=true), so each browser is a
 * client address of its own for the per-address throttles.
 */
export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

export const PASSWORD = 'correct horse battery staple';

export class HttpBrowser {
  readonly cookies = new Map<string, string>();
  csrf = '';
  readonly ip: string;

  constructor(ip: string) {
    this.ip = ip;
  }

  /** Another browser holding the same cookies and token (a copy of a stolen cookie, say). */
  clone(): HttpBrowser {
    const copy = new HttpBrowser(this.ip);
    for (const [k, v] of this.cookies) copy.cookies.set(k, v);
    copy.csrf = this.csrf;
    return copy;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return { 'x-forwarded-for': this.ip, ...(cookie ? { cookie } : {}), ...extra };
  }

  private async remember(res: Response): Promise<Answer> {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((p) => p.trim());
      const cut = pair.indexOf('=');
      const name = pair.slice(0, cut);
      const value = pair.slice(cut + 1);
      const expired = value === '' || attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const body = await res.text();
    const meta = /<meta name="csrf-token" content="([^"]+)">/.exec(body);
    if (meta?.[1]) this.csrf = meta[1];
    return { status: res.status, headers: res.headers, body };
  }

  async get(base: string, url: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.remember(await fetch(`${base}${url}`, { redirect: 'manual', headers: this.headers(headers) }));
  }

  /** A form post with the current CSRF token (unless `fields` sets `_csrf`). */
  async post(base: string, url: string, fields: Record<string, string> = {}): Promise<Answer> {
    const body = new URLSearchParams({ _csrf: this.csrf, ...fields }).toString();
    return this.remember(
      await fetch(`${base}${url}`, {
        method: 'POST',
        redirect: 'manual',
        body,
        headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
      }),
    );
  }

  /** A JSON request; the body is left unread, for streams (the caller reads or cancels it). */
  async sendJson(base: string, method: string, url: string, body?: unknown): Promise<Response> {
    return fetch(`${base}${url}`, {
      method,
      redirect: 'manual',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headers: this.headers({ accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': this.csrf }),
    });
  }

  async getJson<T>(base: string, url: string): Promise<{ status: number; json: T }> {
    const res = await fetch(`${base}${url}`, { redirect: 'manual', headers: this.headers({ accept: 'application/json' }) });
    return { status: res.status, json: (await res.json()) as T };
  }

  async register(base: string, email: string): Promise<Answer> {
    await this.get(base, '/register');
    return this.post(base, '/register', { username: email.split('@')[0] ?? 'user', email, password: PASSWORD });
  }

  async login(base: string, email: string, password = PASSWORD): Promise<Answer> {
    await this.get(base, '/login');
    return this.post(base, '/login', { email, password });
  }
}

/** Where a redirect goes (path only), or undefined when the answer is not one. */
export const redirectOf = (a: Answer): string | undefined => (a.status >= 300 && a.status < 400 ? (a.headers.get('location') ?? '') : undefined);
