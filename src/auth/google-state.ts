import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SecretBox } from '../crypto/secret-box.ts';
import { cookieOptions } from '../http/cookies.ts';

/**
 * What a Google sign-in must remember between requests, kept on the browser that started it, sealed with AES-GCM
 * (SecretBox: tamper-proof and unreadable, since the PKCE verifier is in it) in short-lived HttpOnly cookies.
 *
 * - One cookie per started flow, named after its `state`: a second tab's sign-in adds its own cookie and does not
 *   overwrite the first. The callback opens only the cookie its `state` names, checks the sealed state matches, and
 *   deletes it, so the same callback cannot be used twice in this browser (the provider refuses a reused code too).
 *   Another browser has no such cookie: a callback link sent to someone else (login CSRF) goes nowhere.
 * - One "Google link pending" cookie: the provider vouched for an identity whose e-mail belongs to an existing local
 *   account; the identity is added only once that account's password is given.
 */
export const FLOW_TTL_S = 10 * 60;
export const LINK_TTL_S = 10 * 60;
/** randomState(): 32 random bytes, base64url. Anything else in `?state=` is not ours. */
const STATE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const flowSchema = z.object({ state: z.string(), nonce: z.string(), codeVerifier: z.string(), next: z.string().optional(), exp: z.number() });
export type PendingFlow = z.infer<typeof flowSchema>;

const linkSchema = z.object({
  issuer: z.string(),
  subject: z.string(),
  email: z.string(),
  userId: z.number(),
  next: z.string().optional(),
  /** The password was right; the account has 2FA, so the identity is added once the second step is passed too. */
  passwordProven: z.boolean().optional(),
  exp: z.number(),
});
export type PendingLink = z.infer<typeof linkSchema>;

export type OpenResult<T> = { ok: true; value: T } | { ok: false; reason: 'state_missing' | 'state_tampered' | 'state_expired' };

export class GoogleState {
  readonly #flowBox: SecretBox;
  readonly #linkBox: SecretBox;
  readonly #secure: boolean;
  readonly #prefix: string;

  constructor(appSecret: string, secure: boolean) {
    this.#flowBox = new SecretBox(appSecret, 'google-flow');
    this.#linkBox = new SecretBox(appSecret, 'google-link');
    this.#secure = secure;
    this.#prefix = secure ? '__Host-' : '';
  }

  static isStateShaped(state: unknown): state is string {
    return typeof state === 'string' && STATE_SHAPE.test(state);
  }

  #flowName(state: string): string {
    return `${this.#prefix}parley_oidc_${state}`;
  }

  get linkCookieName(): string {
    return `${this.#prefix}parley_google_link`;
  }

  saveFlow(reply: FastifyReply, flow: Omit<PendingFlow, 'exp'>): void {
    const sealed = this.#flowBox.encrypt(JSON.stringify({ ...flow, exp: Date.now() + FLOW_TTL_S * 1000 }));
    reply.setCookie(this.#flowName(flow.state), sealed, cookieOptions(this.#secure, FLOW_TTL_S));
  }

  /** Opens and deletes the flow named by `state`: each flow is used once. */
  takeFlow(req: FastifyRequest, reply: FastifyReply, state: string): OpenResult<PendingFlow> {
    const name = this.#flowName(state);
    const raw = req.cookies[name];
    if (!raw) return { ok: false, reason: 'state_missing' };
    reply.clearCookie(name, cookieOptions(this.#secure));
    const flow = open(this.#flowBox, flowSchema, raw);
    if (!flow || flow.state !== state) return { ok: false, reason: 'state_tampered' };
    if (flow.exp <= Date.now()) return { ok: false, reason: 'state_expired' };
    return { ok: true, value: flow };
  }

  saveLink(reply: FastifyReply, link: Omit<PendingLink, 'exp'>): void {
    const sealed = this.#linkBox.encrypt(JSON.stringify({ ...link, exp: Date.now() + LINK_TTL_S * 1000 }));
    reply.setCookie(this.linkCookieName, sealed, cookieOptions(this.#secure, LINK_TTL_S));
  }

  readLink(req: FastifyRequest): OpenResult<PendingLink> {
    const raw = req.cookies[this.linkCookieName];
    if (!raw) return { ok: false, reason: 'state_missing' };
    const link = open(this.#linkBox, linkSchema, raw);
    if (!link) return { ok: false, reason: 'state_tampered' };
    if (link.exp <= Date.now()) return { ok: false, reason: 'state_expired' };
    return { ok: true, value: link };
  }

  clearLink(reply: FastifyReply): void {
    reply.clearCookie(this.linkCookieName, cookieOptions(this.#secure));
  }
}

function open<T>(box: SecretBox, schema: z.ZodType<T>, sealed: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(box.decrypt(sealed)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
