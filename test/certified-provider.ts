import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';

/**
 * panva's `oidc-provider` (a certified OpenID provider library) on loopback, on its DEFAULT settings but for what any
 * deployment must give it: the registered clients, the accounts (findAccount) and which claims the standard `email`
 * and `profile` scopes release (its default releases only `sub`). So, as it ships: `prompt` offers only
 * login/consent/none, a client authenticates with client_secret_basic unless registered otherwise, and the ID token of
 * the code flow carries no `email`/`name` (OIDC Core §5.4: they are in UserInfo). Its development login and consent
 * pages stand in for a person: `signIn` fills them in with real HTTP, keeping the provider's cookies.
 */
export const BASIC_CLIENT = { id: 'parley-basic', secret: 'parley-basic-secret' };
export const POST_CLIENT = { id: 'parley-post', secret: 'parley-post-secret' };

export interface Account {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export class CertifiedProvider {
  readonly accounts = new Map<string, Account>();
  /** Each token request: how the client authenticated and the status, e.g. "basic 200". */
  readonly tokenRequests: string[] = [];
  #server: Server | undefined;
  #issuer = '';

  /** Where the clients are registered to be sent back to; may be set after start(), until the first request. */
  redirectUri: string;

  constructor(redirectUri = '') {
    this.redirectUri = redirectUri;
  }

  async start(): Promise<void> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Made at the first request: a browser journey knows the app's address (the redirect URI) only after this one's.
    let handler: ReturnType<Provider['callback']> | undefined;
    server.on('request', (req, res) => {
      handler ??= this.#provider().callback();
      return handler(req, res);
    });
  }

  #provider(): Provider {
    const clients: ClientMetadata[] = [
      // token_endpoint_auth_method left at the provider's default (client_secret_basic).
      { client_id: BASIC_CLIENT.id, client_secret: BASIC_CLIENT.secret, redirect_uris: [this.redirectUri] },
      { client_id: POST_CLIENT.id, client_secret: POST_CLIENT.secret, redirect_uris: [this.redirectUri], token_endpoint_auth_method: 'client_secret_post' },
    ];
    const provider = new Provider(this.#issuer, {
      clients,
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, ...this.accounts.get(id) }) }),
    });
    provider.use(async (ctx, next) => {
      await next();
      // client_secret_basic sends the credentials in the Authorization header; client_secret_post in the form.
      if (ctx.path === '/token') this.tokenRequests.push(`${/^basic /i.test(ctx.get('authorization')) ? 'basic' : 'post'} ${ctx.status}`);
    });
    return provider;
  }

  get issuer(): string {
    return this.#issuer;
  }

  env(client: { id: string; secret: string }, extra: Record<string, string> = {}): Record<string, string> {
    return { OIDC_ISSUER: this.#issuer, OIDC_CLIENT_ID: client.id, OIDC_CLIENT_SECRET: client.secret, OIDC_NAME: 'Corp SSO', ...extra };
  }

  /**
   * What a person's browser does at the provider: follows the authorize URL, signs in as `accountId` on its login
   * page, accepts its consent page, and returns the URL it is sent back to (the app's callback, with the code or an
   * error). Throws if the provider answers anything else.
   */
  async signIn(authorizeUrl: string, accountId: string): Promise<URL> {
    const jar = new Map<string, string>();
    let url = authorizeUrl;
    let form: Record<string, string> | undefined;
    for (let step = 0; step < 20; step++) {
      const res = await fetch(url, {
        method: form ? 'POST' : 'GET',
        redirect: 'manual',
        headers: {
          cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body: form ? new URLSearchParams(form).toString() : undefined,
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair = ''] = c.split(';');
        const eq = pair.indexOf('=');
        const value = pair.slice(eq + 1);
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(pair.slice(0, eq));
        else jar.set(pair.slice(0, eq), value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, url);
        if (next.href.startsWith(this.redirectUri)) return next;
        url = next.href;
        form = undefined;
        continue;
      }
      const body = await res.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
      const prompt = /name="prompt" value="([a-z]+)"/.exec(body)?.[1];
      if (res.status !== 200 || !action || !prompt) throw new Error(`the provider answered ${res.status}: ${body.replace(/<[^>]+>|\s+/g, ' ').slice(0, 300)}`);
      url = new URL(action.replace(/&amp;/g, '&'), url).href;
      form = prompt === 'login' ? { prompt, login: accountId, password: 'any' } : { prompt };
    }
    throw new Error('the provider kept redirecting');
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
