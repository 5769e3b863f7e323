import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/**
 * A tiny browser for `app.inject`: it keeps cookies like a browser would, and reads the CSRF token from
 * the last page's <meta name="csrf-token"> so tests submit forms the way a user does.
 */
export class TestClient {
  readonly cookies = new Map<string, string>();
  csrf = '';
  readonly app: FastifyInstance;

  constructor(app: FastifyInstance) {
    this.app = app;
  }

  private remember(res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number; expires?: Date }>) {
      const expired = c.maxAge === 0 || (c.expires && c.expires.getTime() <= Date.now()) || c.value === '';
      if (expired) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const meta = /<meta name="csrf-token" content="([^"]+)">/.exec(res.body);
    if (meta?.[1]) this.csrf = meta[1];
    return res;
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(await this.app.inject({ method: 'GET', url, headers: { cookie: this.cookieHeader(), ...headers } }));
  }

  /** Posts a form; `_csrf` is the current token unless the test sets it (or sets it to null to omit it). */
  async post(url: string, fields: Record<string, string | null | undefined> = {}, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const form = new URLSearchParams();
    const withToken: Record<string, string | null | undefined> = { _csrf: this.csrf, ...fields };
    for (const [k, v] of Object.entries(withToken)) if (v !== null && v !== undefined) form.append(k, v);
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        payload: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookieHeader(), ...headers },
      }),
    );
  }

  async postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        payload: JSON.stringify(body),
        headers: { 'content-type': 'application/json', 'x-csrf-token': this.csrf, cookie: this.cookieHeader(), ...headers },
      }),
    );
  }

  async register(user: { username?: string; email: string; password?: string }): Promise<LightMyRequestResponse> {
    await this.get('/register');
    return this.post('/register', {
      username: user.username ?? user.email.split('@')[0] ?? 'user',
      email: user.email,
      password: user.password ?? DEFAULT_PASSWORD,
    });
  }

  async login(email: string, password = DEFAULT_PASSWORD): Promise<LightMyRequestResponse> {
    await this.get('/login');
    return this.post('/login', { email, password });
  }
}

export const DEFAULT_PASSWORD = 'correct horse battery staple';
