import { isIP } from 'node:net';

/** Where passkeys live: the relying party ID (a domain) and the one origin assertions must come from. */
export interface RelyingParty {
  rpId: string;
  origin: string;
}

const LOOPBACK_IPS = new Set(['127.0.0.1', '[::1]']);

/**
 * The relying party of PUBLIC_URL, or why WebAuthn cannot use it (a sentence for ConfigError).
 *
 * - The RP ID is PUBLIC_URL's host; browsers refuse an IP address as one (WebAuthn §5.1.3: a "valid domain").
 *   A loopback address (127.0.0.1, ::1) is this machine, whose name for browsers is `localhost`: passkeys are then
 *   offered at http://localhost:<port> (the pages say so), and the CSRF check already takes both (csrf.ts).
 * - WebAuthn runs only in a secure context: https, or http on localhost (and *.localhost).
 */
export function relyingPartyOf(publicUrl: string): RelyingParty | string {
  const url = new URL(publicUrl);
  const port = url.port ? `:${url.port}` : '';
  if (LOOPBACK_IPS.has(url.hostname)) return { rpId: 'localhost', origin: `${url.protocol}//localhost${port}` };
  const bareHost = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(bareHost) !== 0) {
    return `PUBLIC_URL: ${url.hostname} is an IP address, and passkeys (WebAuthn) need a domain name as their relying party ID; give the server a name (DNS, or /etc/hosts on a home network) and use it, e.g. https://chat.example.com`;
  }
  const local = url.hostname === 'localhost' || url.hostname.endsWith('.localhost');
  if (url.protocol !== 'https:' && !local) {
    return `PUBLIC_URL: ${url.origin} is plain http, and browsers offer passkeys (WebAuthn) only on https (or http://localhost); put the app behind a TLS-terminating proxy and set PUBLIC_URL to its https:// address`;
  }
  return { rpId: url.hostname, origin: url.origin };
}
