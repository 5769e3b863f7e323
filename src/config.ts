import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { type OidcConfig, oidcEnv, resolveOidc } from './config-oidc.ts';
import { type RelyingParty, relyingPartyOf } from './config-webauthn.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' }).transform((v) => v === 'true' || v === '1' || v === 'yes');

const positiveInt = z.coerce.number({ message: 'must be a number' }).int().positive();

/** One schema for every environment variable of the contract (PRODUCT.md), parsed once at boot. */
const envSchema = z.object({
  NODE_ENV: z.string().default('development'),
  PORT: z.coerce.number({ message: 'must be a port number' }).int().min(0).max(65535).default(5000),
  HOST: z.string().min(1).default('127.0.0.1'),
  PUBLIC_URL: z
    .url({ message: 'must be an absolute http(s) URL' })
    .refine((u) => /^https?:\/\//.test(u), 'must start with http:// or https://')
    .default('http://localhost:5000'),
  DATABASE_URL: z
    .string()
    .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// connection string')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  APP_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  APP_NAME: z.string().min(1).max(60).default('Parley'),
  LOCAL_LOGIN: bool.default(true),
  REGISTRATION: z.enum(['open', 'closed'], { message: 'must be open or closed' }).default('open'),
  ...oidcEnv,
  TOTP_FOR_OAUTH: bool.default(false),
  REQUIRE_2FA_FOR_ADMINS: bool.default(false),
  // true trusts every hop: the leftmost X-Forwarded-For address is the client, so the proxy must replace the header.
  // A list trusts only those proxy addresses (proxy-addr's CIDRs or loopback/linklocal/uniquelocal): the client is the
  // first address from the right that is not one of them, so whatever a client put in front is never taken.
  // (Fastify's hop count fails closed since 5.x, so it is not offered.)
  TRUST_PROXY: z
    .string()
    .trim()
    .default('false')
    .transform((v, ctx): boolean | string[] => {
      if (/^(true|yes|1)$/i.test(v)) return true;
      if (/^(false|no|0)$/i.test(v)) return false;
      const list = v
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      const address = /^(loopback|linklocal|uniquelocal|[0-9a-f]*[.:][0-9a-f.:]*(\/\d{1,3})?)$/i;
      if (list.length > 0 && list.every((a) => address.test(a))) return list;
      ctx.addIssue({ code: 'custom', message: 'must be true, false or a list of proxy addresses (CIDR, loopback…)' });
      return z.NEVER;
    }),
  // `protocol`: "localhost:11434" parses as a URL with the scheme "localhost:".
  OPENAI_BASE_URL: z.url({ protocol: /^https?$/, message: 'must be an absolute http(s) URL' }).optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_MODELS: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? '')
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
    ),
  LLM_TIMEOUT_S: positiveInt.default(120),
  MAX_PROMPT_CHARS: positiveInt.default(32000),
  MAX_CONCURRENT_GENERATIONS: positiveInt.default(2),
  // Bounds of one answer: its length, its total time (besides LLM_TIMEOUT_S, the idle timeout), and the newest
  // turns of the conversation that fit MAX_HISTORY_CHARS are what the model is sent.
  MAX_ANSWER_CHARS: positiveInt.default(100_000),
  LLM_MAX_ANSWER_S: positiveInt.default(600),
  MAX_HISTORY_CHARS: positiveInt.default(48_000),
  // The OpenAI-compatible API (/v1) and the personal keys pages; false: none of those routes exist.
  API_KEYS: bool.default(true),
  // On SIGTERM/SIGINT, running answers get this long to finish before they end as `interrupted`.
  SHUTDOWN_GRACE_S: z.coerce.number({ message: 'must be a number' }).min(0).max(3600).default(10),
  // Connections per process to a PostgreSQL server (DATABASE_URL); PGlite always has one.
  DB_POOL_SIZE: positiveInt.max(1000).default(10),
  // Unset: GET /metrics is not registered at all (404). Set: the bearer token a Prometheus scrape must send.
  // RFC 6750's b64token characters, so it travels unchanged in an Authorization header; 16+ so it is not guessable.
  METRICS_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters (try: openssl rand -hex 32)')
    .regex(/^[A-Za-z0-9._~+/-]+=*$/, 'must be letters, digits and - . _ ~ + / (a bearer token)')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // The statistics count days in this zone; Intl knows every IANA name the database does (and refuses the rest).
  STATS_TIMEZONE: z
    .string()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone name, like Europe/Berlin')
    .default('UTC'),
});

export type Env = z.infer<typeof envSchema>;
export type Config = Omit<Env, 'APP_SECRET' | keyof typeof oidcEnv> &
  OidcConfig & {
    APP_SECRET: string;
    isProduction: boolean;
    secureCookies: boolean;
    /** Passkeys' relying party, from PUBLIC_URL (config-webauthn.ts). */
    relyingParty: RelyingParty;
  };

export class ConfigError extends Error {}

/** Parses the environment; throws a ConfigError whose message is one line naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "unset": `FOO= npm start` should not fail on a format check.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${String(issue?.path[0] ?? 'environment')}: ${issue?.message ?? 'invalid'}`);
  }
  const e = parsed.data;
  const isProduction = e.NODE_ENV === 'production';
  const oidc = resolveOidc(e);
  if (typeof oidc === 'string') throw new ConfigError(oidc);
  if (e.OPENAI_MODELS.length > 0 && !e.OPENAI_BASE_URL) {
    throw new ConfigError('OPENAI_BASE_URL: required when OPENAI_MODELS is set');
  }
  const relyingParty = relyingPartyOf(e.PUBLIC_URL);
  if (typeof relyingParty === 'string') throw new ConfigError(relyingParty);
  let secret = e.APP_SECRET;
  if (!secret) {
    if (isProduction) throw new ConfigError('APP_SECRET: required when NODE_ENV is production');
    secret = readOrCreateDevSecret(e.DATA_DIR);
  }
  const rest: Partial<Env> = { ...e };
  for (const name of Object.keys(oidcEnv) as Array<keyof typeof oidcEnv>) delete rest[name];
  return {
    ...(rest as Omit<Env, keyof typeof oidcEnv>),
    ...oidc,
    APP_SECRET: secret,
    isProduction,
    secureCookies: e.PUBLIC_URL.startsWith('https://'),
    relyingParty,
  };
}

/** Development convenience: a secret generated once and kept beside the embedded database. */
function readOrCreateDevSecret(dataDir: string): string {
  const file = path.join(dataDir, 'app-secret');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    // 'wx': of two processes starting at once on a fresh DATA_DIR, one writes and the other reads what it wrote.
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 32) throw new ConfigError(`APP_SECRET: the generated secret in ${file} is too short or empty; delete the file to make a new one`);
  return secret;
}
