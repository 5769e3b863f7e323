import * as oidc from 'openid-client';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { isGoogle } from '../config-oidc.ts';
import { isStorableText } from '../http/storable-text.ts';

/** The claims sign-in uses: of a validated ID token, or of UserInfo about the same `sub` when the ID token lacks them. */
export interface VerifiedIdentity {
  issuer: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  /** Google Workspace domain, from the provider (never from the request). */
  hostedDomain: string | null;
  /** The values of the ID token's OIDC_GROUPS_CLAIM (none when the token lacks it); null when that setting is unset. */
  groups: string[] | null;
}

export interface AuthorizationStart {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** Why a callback was refused, as a short code for the log line; the page shows `message`. */
export class OidcFailure extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

const SCOPES = 'openid email profile';
/** Seconds of clock difference tolerated on exp/iat/nbf (openid-client's default, written here so nobody widens it unseen). */
const CLOCK_TOLERANCE_S = 30;
/** Seconds each request to the provider may take. */
const PROVIDER_TIMEOUT_S = 10;
/** After a failed discovery, the next sign-in tries again; this keeps a burst of clicks from hammering a provider that is down. */
const DISCOVERY_RETRY_MS = 2_000;

const loopback = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * The OpenID Connect client (openid-client v6). Discovery runs at the first sign-in, not at boot, so a provider that
 * is down when the app starts does not stop it; the result is cached, a failure is not (the next sign-in retries).
 * The ID token is validated by openid-client: signature through the issuer's JWKS (enableNonRepudiationChecks; an
 * unknown `kid` refetches the JWKS once, which is how key rotation is followed), `iss`, `aud`, `azp`, `exp`/`iat`
 * with CLOCK_TOLERANCE_S, and `nonce`; PKCE S256 and `state` are checked on the callback. Nothing is Google-only
 * unless the issuer is Google's or discovery offers it (decision record 009): the client authenticates as
 * tokenAuthMethod says, `prompt=select_account` goes where offersAccountChooser says, and claims missing from the
 * ID token are read from UserInfo.
 */
export class GoogleClient {
  readonly #config: Config;
  /** "Google", or OIDC_NAME: what the messages call the provider. */
  readonly #name: string;
  readonly redirectUri: string;
  #discovered: Promise<oidc.Configuration> | undefined;
  #failedAt = 0;

  readonly #groupsClaim: string | null;
  constructor(config: Config) {
    this.#groupsClaim = config.OIDC_GROUPS_CLAIM;
    this.#config = config;
    this.#name = config.OIDC_NAME;
    this.redirectUri = new URL('/login/google/authorized', config.PUBLIC_URL).toString();
  }

  async #configuration(): Promise<oidc.Configuration> {
    if (this.#discovered) return this.#discovered;
    if (Date.now() - this.#failedAt < DISCOVERY_RETRY_MS)
      throw new OidcFailure('provider_unreachable', `${this.#name} sign-in is unavailable right now. Try again in a moment.`);
    const issuer = new URL(this.#config.OIDC_ISSUER);
    // config.ts already refuses http:// except on loopback; checked again where the exception is granted.
    const insecure = issuer.protocol === 'http:' && loopback.has(issuer.hostname);
    const clientId = this.#config.OIDC_CLIENT_ID ?? '';
    const secret = this.#config.OIDC_CLIENT_SECRET;
    const metadata = { client_secret: secret, [oidc.clockTolerance]: CLOCK_TOLERANCE_S };
    const hardened = (config: oidc.Configuration) => {
      config.timeout = PROVIDER_TIMEOUT_S;
      if (insecure) oidc.allowInsecureRequests(config);
      oidc.enableNonRepudiationChecks(config);
      return config;
    };
    const attempt = oidc
      .discovery(issuer, clientId, metadata, undefined, { timeout: PROVIDER_TIMEOUT_S, execute: insecure ? [oidc.allowInsecureRequests] : [] })
      // How the client authenticates at the token endpoint is known only once discovery has said what the provider takes.
      .then((found) => {
        const server = found.serverMetadata();
        const auth =
          tokenAuthMethod(server.token_endpoint_auth_methods_supported) === 'client_secret_post'
            ? oidc.ClientSecretPost(secret)
            : oidc.ClientSecretBasic(secret);
        return hardened(new oidc.Configuration(server, clientId, metadata, auth));
      })
      .catch((err: unknown) => {
        this.#discovered = undefined;
        this.#failedAt = Date.now();
        throw new OidcFailure('discovery_failed', `${this.#name} sign-in is unavailable right now. Try again in a moment.`, { cause: err });
      });
    this.#discovered = attempt;
    return attempt;
  }

  /** Fresh state, nonce and PKCE verifier for one sign-in, and the provider URL to send the browser to. */
  async start(): Promise<AuthorizationStart> {
    const config = await this.#configuration();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: SCOPES,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(offersAccountChooser(this.#config.OIDC_ISSUER, config.serverMetadata()) ? { prompt: 'select_account' } : {}),
    });
    return { url, state, nonce, codeVerifier };
  }

  /** Exchanges the code and validates the ID token; throws OidcFailure with a reason code. */
  async finish(callbackUrl: URL, expected: { state: string; nonce: string; codeVerifier: string }): Promise<VerifiedIdentity> {
    const config = await this.#configuration();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: expected.codeVerifier,
        expectedState: expected.state,
        expectedNonce: expected.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw classify(err, this.#name);
    }
    const claims = tokens.claims();
    if (!claims) throw new OidcFailure('id_token_missing', `${this.#name} did not confirm who you are. Try again.`);
    // openid-client bounds iat only in the past (an hour); a token issued in our future means a clock is wrong.
    if (claims.iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) throw new OidcFailure('clock_skew', clockMessage(this.#name));
    // The claims are stored: a provider's NUL, lone surrogate or oversized value would be a 500 (or silently changed
    // text) far from here. OpenID Connect caps `sub` at 255 characters; an address that is not one counts as none.
    if (!storableClaim(claims.sub, 255)) throw new OidcFailure('subject_invalid', tryAgain(this.#name));
    const info = await this.#userInfo(config, tokens.access_token, claims);
    // The address and whether it is verified come as a pair from one source: the ID token's when it has both.
    const address = carriesAddress(claims) ? claims : info;
    const name = claims.name !== undefined ? claims.name : info.name;
    const hd = claims.hd !== undefined ? claims.hd : info.hd;
    return {
      issuer: claims.iss,
      subject: claims.sub,
      email: storableClaim(address.email, 254) && EMAIL.safeParse(address.email).success ? address.email : null,
      emailVerified: address.email_verified === true,
      name: storableClaim(name, 1000) ? name : null,
      hostedDomain: storableClaim(hd, 253) ? hd.toLowerCase() : null,
      groups: this.#groupsClaim === null ? null : groupsFromClaim(claims[this.#groupsClaim]),
    };
  }

  /**
   * Google puts the address in the ID token; a provider following OpenID Connect Core §5.4 gives the claims the
   * `email` and `profile` scopes ask for at the UserInfo endpoint only. Asked when the ID token lacks the address or
   * its verification; openid-client checks the answer's `sub` is the ID token's (or it would be someone else's claims).
   */
  async #userInfo(config: oidc.Configuration, accessToken: string, claims: oidc.IDToken): Promise<Record<string, unknown>> {
    if (carriesAddress(claims)) return {};
    if (!config.serverMetadata().userinfo_endpoint || !accessToken) return {};
    try {
      return await oidc.fetchUserInfo(config, accessToken, claims.sub);
    } catch (err) {
      const failure = classify(err, this.#name);
      if (failure.reason === 'provider_unreachable') throw failure;
      throw new OidcFailure(`userinfo_${failure.reason.replace(/^(token|id_token)_/, '')}`, tryAgain(this.#name), { cause: err });
    }
  }
}

/** The ID token has the address and whether it is verified: both come from it, and UserInfo is not asked. */
const carriesAddress = (claims: oidc.IDToken): boolean => claims.email !== undefined && claims.email_verified !== undefined;

/**
 * `prompt=select_account` lets someone with several Google accounts choose which one signs in. It is not one of OpenID
 * Connect's required prompt values: a provider that does not offer it refuses the whole request (invalid_request), so
 * it is sent to Google and to providers whose discovery lists it in `prompt_values_supported`, to no one else.
 */
export function offersAccountChooser(issuer: string, metadata: Readonly<oidc.ServerMetadata>): boolean {
  if (isGoogle(issuer)) return true;
  return Array.isArray(metadata.prompt_values_supported) && metadata.prompt_values_supported.includes('select_account');
}

/**
 * client_secret_basic (RFC 6749 §2.3.1: the method every provider must support, and OpenID Connect's default when
 * discovery lists none) unless the provider's discovery lists client_secret_post and not basic. A strict provider
 * refuses a method the client was not registered with; most register basic by default.
 */
export function tokenAuthMethod(supported: readonly string[] | undefined): 'client_secret_basic' | 'client_secret_post' {
  if (supported?.includes('client_secret_post') && !supported.includes('client_secret_basic')) return 'client_secret_post';
  return 'client_secret_basic';
}

const tryAgain = (name: string) => `${name} sign-in did not complete. Please try again.`;
const clockMessage = (name: string) => `${name}'s answer has expired or is not valid yet. If this keeps happening, the server's clock may be wrong.`;
const EMAIL = z.email();

/** A claim PostgreSQL stores as sent: text, at most `max` code points, without NUL or lone surrogates. */
/** At most this many group values are read from a token (Entra ID sends at most 200 before it switches to an overage link). */
const MAX_GROUP_VALUES = 500;

/**
 * A groups claim's values: an array of strings (Keycloak, Authentik, Entra ID) or one string. Keycloak's "full group
 * path" form (`/staff`) also names the group `staff`. Anything else (numbers, objects, unstorable text) is skipped.
 */
export function groupsFromClaim(value: unknown): string[] {
  const values = Array.isArray(value) ? value.slice(0, MAX_GROUP_VALUES) : value === undefined ? [] : [value];
  return values.filter((v): v is string => storableClaim(v, 255)).flatMap((v) => (v.startsWith('/') && v.length > 1 ? [v, v.slice(1)] : [v]));
}

function storableClaim(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && [...value].length <= max && isStorableText(value);
}

/** openid-client's errors → a reason code for the log and a message for the page; nothing of the token is kept. */
function classify(err: unknown, name: string): OidcFailure {
  if (err instanceof oidc.AuthorizationResponseError) return new OidcFailure(`provider_${safeCode(err.error)}`, tryAgain(name), { cause: err });
  if (err instanceof oidc.ResponseBodyError) return new OidcFailure(`token_${safeCode(err.error)}`, tryAgain(name), { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') return new OidcFailure('clock_skew', clockMessage(name), { cause: err });
  if (typeof code === 'string' && code.startsWith('OAUTH_'))
    return new OidcFailure(`id_token_${safeCode(code.slice(6).toLowerCase())}`, tryAgain(name), { cause: err });
  if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
    return new OidcFailure('id_token_signature', tryAgain(name), { cause: err });
  if (err instanceof TypeError || (err as { name?: string } | null)?.name === 'TimeoutError' || (err as { name?: string } | null)?.name === 'AbortError')
    return new OidcFailure('provider_unreachable', `${name} could not be reached. Try again in a moment.`, { cause: err });
  return new OidcFailure('callback_invalid', tryAgain(name), { cause: err });
}

/** Codes from the provider go into a log line: only a short identifier-shaped string. */
function safeCode(value: unknown): string {
  return typeof value === 'string' && /^[a-z0-9_]{1,40}$/i.test(value) ? value.toLowerCase() : 'error';
}
