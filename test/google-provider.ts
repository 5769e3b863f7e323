import { createHmac, createSign, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { Events, OAuth2Server } from 'oauth2-mock-server';

/**
 * A real OpenID provider on loopback (oauth2-mock-server) standing in for Google: discovery, JWKS, the authorize
 * endpoint with PKCE, the token endpoint. Tests set the claims of the next ID token, or replace the token outright
 * (forgeries: alg none, HS256 keyed with the public key, an unknown kid).
 */
export const CLIENT_ID = 'parley-test-client';
export const CLIENT_SECRET = 'parley-test-secret';

export type Claims = Record<string, unknown>;

export class TestProvider {
  readonly server = new OAuth2Server();
  /** Claims merged into every ID token until changed (the provider sets iss, aud, iat, exp, nonce and sub "johndoe"). */
  claims: Claims = {};
  /** Replaces the next ID token the token endpoint returns, given the nonce the app sent. */
  forgeNext: ((nonce: string) => string) | undefined;
  /** What GET /userinfo answers (unset: the `sub` of the last ID token, nothing else), and how often it was asked. */
  userinfo: Claims | undefined;
  userinfoCalls = 0;
  #lastNonce = '';
  #lastSub: unknown;
  readonly #claimsByCode = new Map<string, Claims>();

  async start(): Promise<void> {
    await this.server.issuer.keys.generate('RS256');
    await this.server.start(0, '127.0.0.1');
    // The ID token (the access token carries `scope`): our claims on top of the provider's.
    this.server.service.on(Events.BeforeTokenSigning, (token, req) => {
      if ('scope' in token.payload) return;
      // client_secret_basic form-encodes the client id (RFC 6749 §2.3.1: openid-client sends "-" as %2D); the mock
      // copies it into `aud` without decoding it, as a real provider would.
      if (typeof token.payload.aud === 'string') token.payload.aud = decodeURIComponent(token.payload.aud);
      const code = (req as { body?: { code?: unknown } }).body?.code;
      const claims = (typeof code === 'string' && this.#claimsByCode.get(code)) || this.claims;
      Object.assign(token.payload, claims);
      for (const [k, v] of Object.entries(claims)) if (v === undefined) delete token.payload[k];
      this.#lastSub = token.payload.sub;
    });
    this.server.service.on(Events.BeforeUserinfo, (res) => {
      this.userinfoCalls++;
      // The mock's own answer is always about "johndoe"; a provider answers about the person the token was for.
      res.body = this.userinfo ?? { sub: this.#lastSub };
    });
    this.server.service.on(Events.BeforeAuthorizeRedirect, (_uri, req) => {
      this.#lastNonce = String(new URL(req.url ?? '/', 'http://x').searchParams.get('nonce') ?? '');
    });
    this.server.service.on(Events.BeforeResponse, (res) => {
      const forge = this.forgeNext;
      if (!forge) return;
      this.forgeNext = undefined;
      (res.body as Record<string, unknown>).id_token = forge(this.#lastNonce);
    });
  }

  get issuer(): string {
    const url = this.server.issuer.url;
    if (!url) throw new Error('provider not started');
    return url;
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return { GOOGLE_CLIENT_ID: CLIENT_ID, GOOGLE_CLIENT_SECRET: CLIENT_SECRET, GOOGLE_ISSUER: this.issuer, ...extra };
  }

  /** What a browser does at the provider: follow the authorize URL, which answers with a redirect back to the app. */
  async authorize(authorizeUrl: string, claims?: Claims): Promise<string> {
    const res = await fetch(authorizeUrl, { redirect: 'manual' });
    const location = res.headers.get('location');
    if (res.status !== 302 || !location) throw new Error(`authorize answered ${res.status}`);
    // Claims for this code only: concurrent sign-ins of different people.
    const code = new URL(location).searchParams.get('code');
    if (claims && code) this.#claimsByCode.set(code, claims);
    return location;
  }

  /** The claims of a plausible ID token for this provider and client. */
  baseClaims(nonce: string, extra: Claims = {}): Claims {
    const now = Math.floor(Date.now() / 1000);
    return { iss: this.issuer, aud: CLIENT_ID, sub: 'johndoe', iat: now, exp: now + 3600, nonce, ...this.claims, ...extra };
  }

  /** The public key of the provider's signing key, as a JWK. */
  async publicJwk(): Promise<JsonWebKey & { kid: string }> {
    const res = await fetch(`${this.issuer}/jwks`);
    const body = (await res.json()) as { keys: Array<JsonWebKey & { kid: string }> };
    const key = body.keys[0];
    if (!key) throw new Error('no key');
    return key;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export function unsignedToken(claims: Claims): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** The algorithm-confusion forgery: HS256 keyed with the provider's public key, which anyone can fetch. */
export function hs256Token(claims: Claims, secret: string | Buffer, kid?: string): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Properly signed, RS256, but with a key the provider never published. */
export function foreignKeyToken(claims: Claims): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'not-in-the-jwks' })}.${b64(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}
