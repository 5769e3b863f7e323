import { performance } from 'node:perf_hooks';
import { readEvents } from './chat-world.ts';

/**
 * A browser as the soak sees one: its own cookie jar (session, CSRF and flash cookies, as the server sets and
 * clears them), the latest CSRF token a page handed out, and every request timed into a shared Tally under a
 * kind ("GET /chat/:id"). A request whose status is not the one expected, that fails on the network, or whose
 * body is not what the kind promises, is an error of that kind: the soak's verdict wants none.
 */
export class Tally {
  readonly latencyMs = new Map<string, number[]>();
  readonly errors = new Map<string, number>();
  /** The first few errors, verbatim, for the report (the count is in `errors`). */
  readonly problems: string[] = [];

  record(kind: string, ms: number): void {
    const list = this.latencyMs.get(kind) ?? [];
    list.push(ms);
    this.latencyMs.set(kind, list);
  }

  fail(kind: string, problem: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
    if (this.problems.length < 20) this.problems.push(`${kind}: ${problem}`);
  }

  /** Requests timed so far (the first token of an answer is a moment of its request, not one of its own). */
  get requestCount(): number {
    let n = 0;
    for (const [kind, list] of this.latencyMs) if (kind !== FIRST_TOKEN) n += list.length;
    return n;
  }

  get errorCount(): number {
    return [...this.errors.values()].reduce((a, b) => a + b, 0);
  }
}

export const FIRST_TOKEN = 'first token';

export interface Sent {
  status: number;
  text: string;
  location: string | null;
}

export interface Streamed {
  responseId: number;
  text: string;
}

const csrfOf = (html: string) => /<meta name="csrf-token" content="([^"]+)">/.exec(html)?.[1];

export class Visitor {
  readonly baseUrl: string;
  private readonly tally: Tally;
  private readonly jar = new Map<string, string>();
  private csrf = '';

  constructor(baseUrl: string, tally: Tally) {
    this.baseUrl = baseUrl;
    this.tally = tally;
  }

  /**
   * One request, timed until its whole body has arrived. Never follows redirects: a 302 to /login where a page was
   * expected is exactly the kind of failure a soak is for. Returns undefined when it counted as an error.
   */
  async send(
    kind: string,
    path: string,
    expect: number,
    init: { method?: string; form?: Record<string, string>; json?: unknown } = {},
  ): Promise<Sent | undefined> {
    const headers: Record<string, string> = { cookie: this.cookieHeader() };
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams({ _csrf: this.csrf, ...init.form }).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      headers['x-csrf-token'] = this.csrf;
      body = JSON.stringify(init.json);
    }
    const started = performance.now();
    try {
      const res = await fetch(`${this.baseUrl}${path}`, { method: init.method ?? 'GET', headers, body, redirect: 'manual' });
      const text = await res.text();
      this.tally.record(kind, performance.now() - started);
      this.keepCookies(res);
      if (res.status !== expect) {
        this.tally.fail(kind, `${init.method ?? 'GET'} ${path} answered ${res.status}, not ${expect}: ${text.slice(0, 200)}`);
        return undefined;
      }
      const token = res.headers.get('content-type')?.startsWith('text/html') ? csrfOf(text) : undefined;
      if (token) this.csrf = token;
      return { status: res.status, text, location: res.headers.get('location') };
    } catch (err) {
      this.tally.record(kind, performance.now() - started);
      this.tally.fail(kind, `${init.method ?? 'GET'} ${path}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** A page: 200 with HTML that holds `marker` (its heading, say), so an error page served as 200 is caught too. */
  async page(kind: string, path: string, marker: string): Promise<Sent | undefined> {
    const sent = await this.send(kind, path, 200);
    if (sent && !sent.text.includes(marker)) {
      this.tally.fail(kind, `GET ${path}: 200 without “${marker}”`);
      return undefined;
    }
    return sent;
  }

  /** The sign-in form, then the password: 303 to /chat with a session cookie; false when it did not work. */
  async signIn(email: string, password: string): Promise<boolean> {
    this.jar.clear();
    if (!(await this.page('GET /login', '/login', 'name="password"'))) return false;
    const sent = await this.send('POST /login (password)', '/login', 303, { method: 'POST', form: { email, password } });
    if (!sent) return false;
    if (sent.location !== '/chat' || !this.jar.has('parley_session')) {
      this.tally.fail('POST /login (password)', `redirected to ${sent.location} ${this.jar.has('parley_session') ? 'with' : 'without'} a session`);
      return false;
    }
    return Boolean(await this.page('GET /chat', '/chat', 'csrf-token'));
  }

  async signOut(): Promise<void> {
    const sent = await this.send('POST /logout', '/logout', 303, { method: 'POST', form: {} });
    if (sent && this.jar.has('parley_session')) this.tally.fail('POST /logout', 'the session cookie survived sign-out');
  }

  /**
   * A prompt, read over SSE to its end: two kinds are timed, the first token and the whole answer. The answer
   * must end `done` with exactly `expected` as its tokens; returns its response id (to check what was stored).
   */
  async ask(chatId: number, prompt: string, expected: string): Promise<Streamed | undefined> {
    const kind = 'POST /api/chats/:id/messages (whole answer)';
    const started = performance.now();
    let responseId = 0;
    try {
      const res = await fetch(`${this.baseUrl}/api/chats/${chatId}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: this.cookieHeader(), 'x-csrf-token': this.csrf },
        body: JSON.stringify({ content: prompt }),
      });
      if (res.status !== 200) {
        this.tally.record(kind, performance.now() - started);
        this.tally.fail(kind, `answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
        return undefined;
      }
      let firstToken = true;
      const events = await readEvents(res, (event, data) => {
        if (event === 'start') responseId = (data as { idresponse: number }).idresponse;
        if (event === 'token' && firstToken) {
          firstToken = false;
          this.tally.record(FIRST_TOKEN, performance.now() - started);
        }
      });
      this.tally.record(kind, performance.now() - started);
      const text = events
        .filter((e) => e.event === 'token')
        .map((e) => (e.data as { text: string }).text)
        .join('');
      const last = events.at(-1);
      if (last?.event !== 'done' || (last.data as { status?: string }).status !== 'complete' || text !== expected) {
        this.tally.fail(
          kind,
          `response ${responseId} ended ${last?.event} ${JSON.stringify(last?.data).slice(0, 120)} with ${text.length}/${expected.length} chars`,
        );
        return responseId ? { responseId, text } : undefined;
      }
      return { responseId, text };
    } catch (err) {
      this.tally.record(kind, performance.now() - started);
      this.tally.fail(kind, `response ${responseId}: ${(err as Error).message}`);
      return responseId ? { responseId, text: '' } : undefined;
    }
  }

  private cookieHeader(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  /** As a browser does: a cookie set with an empty value, Max-Age=0 or an expiry in the past is removed. */
  private keepCookies(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const cut = pair.indexOf('=');
      const name = pair.slice(0, cut);
      const value = pair.slice(cut + 1);
      const maxAge = attributes.find((a) => /^max-age=/i.test(a));
      const expires = attributes.find((a) => /^expires=/i.test(a));
      const gone = value === '' || (maxAge && Number(maxAge.split('=')[1]) <= 0) || (expires && Date.parse(expires.slice(8)) <= Date.now());
      if (gone) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
}
