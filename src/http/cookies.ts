import type { CookieSerializeOptions } from '@fastify/cookie';

/** Cookie names and flags. With an https PUBLIC_URL the `__Host-` prefix pins them to our origin (no Domain, Path=/, Secure). */
export interface CookieNames {
  session: string;
  csrf: string;
  flash: string;
}

export function cookieNames(secure: boolean): CookieNames {
  const prefix = secure ? '__Host-' : '';
  return { session: `${prefix}parley_session`, csrf: `${prefix}parley_csrf`, flash: `${prefix}parley_flash` };
}

export function cookieOptions(secure: boolean, maxAgeS?: number): CookieSerializeOptions {
  return { httpOnly: true, sameSite: 'lax', path: '/', secure, ...(maxAgeS === undefined ? {} : { maxAge: maxAgeS }) };
}
