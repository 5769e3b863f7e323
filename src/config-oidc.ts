import { z } from 'zod';

/**
 * Sign-in with an OpenID Connect provider: Google by default, or any other (Keycloak, Authentik, Entra ID…).
 * The general OIDC_* names and the older GOOGLE_* ones both work; each pair is one setting, so setting both to
 * different values stops the start (which one was meant is not ours to guess). Decision record 009.
 */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

const issuerUrl = z.url({ message: 'must be an absolute URL' }).refine((u) => {
  // zod runs refinements even when .url() failed: a non-URL must be refused here, not thrown as a TypeError.
  if (!URL.canParse(u)) return false;
  const url = new URL(u);
  return url.protocol === 'https:' || (url.protocol === 'http:' && loopbackHosts.has(url.hostname));
}, 'must be https:// (http:// only on a loopback host)');

const domainList = z.string().transform((v) =>
  v
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean),
);

export const oidcEnv = {
  OIDC_ISSUER: issuerUrl.optional(),
  GOOGLE_ISSUER: issuerUrl.optional(),
  OIDC_CLIENT_ID: z.string().min(1).optional(),
  GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_ALLOWED_DOMAINS: domainList.optional(),
  GOOGLE_ALLOWED_DOMAINS: domainList.optional(),
  // Shown on the button ("Sign in with Corp SSO") and in messages; plain text (no control or bidi characters).
  OIDC_NAME: z
    .string()
    .trim()
    .min(1)
    .max(40, 'must be at most 40 characters')
    .regex(/^[^\p{Cc}\p{Cf}]+$/u, 'must be plain text (no control or formatting characters)')
    .optional(),
  OIDC_DOMAIN_CLAIM: z.enum(['hd', 'email'], { message: 'must be hd or email' }).optional(),
  // The ID token claim whose values set membership of the groups "managed by sign-in" (Keycloak, Authentik, Entra ID: groups).
  OIDC_GROUPS_CLAIM: z
    .string()
    .regex(/^[A-Za-z0-9_:./-]{1,100}$/, { message: 'must be a claim name (letters, digits, _ : . / -)' })
    .optional(),
};

type OidcEnv = { [K in keyof typeof oidcEnv]?: z.infer<(typeof oidcEnv)[K]> };

export interface OidcConfig {
  OIDC_ISSUER: string;
  /** Unset: no OpenID Connect sign-in on this server. */
  OIDC_CLIENT_ID: string | undefined;
  OIDC_CLIENT_SECRET: string | undefined;
  /** Empty: everyone the provider vouches for. */
  OIDC_ALLOWED_DOMAINS: string[];
  OIDC_NAME: string;
  /**
   * What OIDC_ALLOWED_DOMAINS is checked against: `hd`, Google's signed Workspace domain (a personal Google account
   * can carry an address of any domain), or `email`, the domain of the address the provider verified.
   */
  OIDC_DOMAIN_CLAIM: 'hd' | 'email';
  /** The ID token claim listing the user's groups (docs/decisions/016); null: sign-in manages no group. */
  OIDC_GROUPS_CLAIM: string | null;
}

const PAIRS = [
  ['OIDC_ISSUER', 'GOOGLE_ISSUER'],
  ['OIDC_CLIENT_ID', 'GOOGLE_CLIENT_ID'],
  ['OIDC_CLIENT_SECRET', 'GOOGLE_CLIENT_SECRET'],
  ['OIDC_ALLOWED_DOMAINS', 'GOOGLE_ALLOWED_DOMAINS'],
] as const;

/** The OpenID Connect settings, or the one-line message naming the variable that is wrong. */
export function resolveOidc(e: OidcEnv): OidcConfig | string {
  for (const [general, google] of PAIRS) {
    const a = e[general];
    const b = e[google];
    if (a !== undefined && b !== undefined && JSON.stringify(a) !== JSON.stringify(b)) {
      return `${general}: ${google} (its older name) is set to something else; set only one of them`;
    }
  }
  const issuer = e.OIDC_ISSUER ?? e.GOOGLE_ISSUER ?? GOOGLE_ISSUER;
  const clientId = e.OIDC_CLIENT_ID ?? e.GOOGLE_CLIENT_ID;
  const clientSecret = e.OIDC_CLIENT_SECRET ?? e.GOOGLE_CLIENT_SECRET;
  if (Boolean(clientId) !== Boolean(clientSecret)) {
    const prefix = e.OIDC_CLIENT_ID || e.OIDC_CLIENT_SECRET ? 'OIDC' : 'GOOGLE';
    return `${prefix}_CLIENT_SECRET: ${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must be set together`;
  }
  const google = isGoogle(issuer);
  return {
    OIDC_ISSUER: issuer,
    OIDC_CLIENT_ID: clientId,
    OIDC_CLIENT_SECRET: clientSecret,
    OIDC_ALLOWED_DOMAINS: e.OIDC_ALLOWED_DOMAINS ?? e.GOOGLE_ALLOWED_DOMAINS ?? [],
    // Configured by the GOOGLE_* names, the button said "Google" before there was a name to set: it still does.
    OIDC_NAME: e.OIDC_NAME ?? (google || e.GOOGLE_CLIENT_ID ? 'Google' : new URL(issuer).hostname),
    OIDC_DOMAIN_CLAIM: e.OIDC_DOMAIN_CLAIM ?? (google ? 'hd' : 'email'),
    OIDC_GROUPS_CLAIM: e.OIDC_GROUPS_CLAIM ?? null,
  };
}

export function isGoogle(issuer: string): boolean {
  return new URL(issuer).href === new URL(GOOGLE_ISSUER).href;
}
