import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { RelyingParty } from '../config-webauthn.ts';
import type { Db } from '../db/database.ts';
import { findPasskey, type NewPasskey, recordPasskeyUse, type StoredPasskey } from './passkey-queries.ts';

/**
 * The WebAuthn ceremonies, with @simplewebauthn/server doing the protocol (CBOR, COSE keys, signatures, origin, RP ID
 * hash, flags). What is ours: every passkey is a discoverable credential with user verification required (so one
 * passkey is a whole sign-in: something held and a PIN or biometric), attestation is not asked for (we trust no
 * vendor list, decision record 017), and the counter and user-handle rules below.
 */

/** How long the browser lets the person answer; the stored challenge lives longer (CHALLENGE_TTL_MS). */
const CEREMONY_TIMEOUT_MS = 120_000;
const B64URL_MAX = 16_384;
const b64url = z
  .string()
  .max(B64URL_MAX)
  .regex(/^[A-Za-z0-9_-]*={0,2}$/, 'must be base64url');
const TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] as const;

/** The browser's JSON of navigator.credentials.create(), as @simplewebauthn/browser sends it. */
export const registrationResponseSchema = z.object({
  id: b64url.min(1).max(1365),
  rawId: b64url.min(1).max(1365),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(20)).max(10).optional(),
  }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

/** The browser's JSON of navigator.credentials.get(). */
export const authenticationResponseSchema = z.object({
  id: b64url.min(1).max(1365),
  rawId: b64url.min(1).max(1365),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: b64url.optional(),
  }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

const knownTransports = (list: string[]): AuthenticatorTransportFuture[] =>
  list.filter((t): t is AuthenticatorTransportFuture => (TRANSPORTS as readonly string[]).includes(t));

export async function registrationOptions(
  rp: RelyingParty,
  appName: string,
  user: { handle: string; email: string; username: string },
  exclude: Array<{ id: string; transports: string[] }>,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  return generateRegistrationOptions({
    rpName: appName,
    rpID: rp.rpId,
    userName: user.email,
    userDisplayName: user.username,
    userID: Buffer.from(user.handle, 'base64url'),
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    // One authenticator is not registered twice: it refuses to make a second credential for this account.
    excludeCredentials: exclude.map((c) => ({ id: c.id, transports: knownTransports(c.transports) })),
    authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
  });
}

export type RegistrationResult = { ok: true; passkey: Omit<NewPasskey, 'name'> } | { ok: false; message: string };

export async function verifyRegistration(
  rp: RelyingParty,
  response: z.infer<typeof registrationResponseSchema>,
  challenge: string,
): Promise<RegistrationResult> {
  try {
    const result = await verifyRegistrationResponse({
      response: response as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpId,
      requireUserVerification: true,
    });
    if (!result.verified) return { ok: false, message: 'The passkey could not be verified. Try again.' };
    const info = result.registrationInfo;
    return {
      ok: true,
      passkey: {
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: knownTransports(response.response.transports ?? []),
        backupEligible: info.credentialDeviceType === 'multiDevice',
        backedUp: info.credentialBackedUp,
      },
    };
  } catch (err) {
    return { ok: false, message: `The passkey could not be verified: ${(err as Error).message}` };
  }
}

/**
 * Options for navigator.credentials.get(). No allowCredentials: the authenticator offers the account's discoverable
 * passkeys, and the assertion names its owner (for a second factor or step-up the owner is then checked).
 */
export async function authenticationOptions(rp: RelyingParty): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({ rpID: rp.rpId, userVerification: 'required', timeout: CEREMONY_TIMEOUT_MS });
}

export type AssertionResult =
  | { ok: true; passkey: StoredPasskey }
  /** No account has this credential (removed since, or never registered here). */
  | { ok: false; reason: 'unknown' }
  /** Signature, challenge, origin, RP ID or user verification wrong. */
  | { ok: false; reason: 'invalid' }
  /** The assertion's user handle is not the credential owner's. */
  | { ok: false; reason: 'user-handle'; passkey: StoredPasskey }
  /** Valid signature, but the counter did not go up: possibly a cloned authenticator. */
  | { ok: false; reason: 'counter'; passkey: StoredPasskey; counter: number };

/**
 * Verifies an assertion against the stored credential and records its use. The counter is checked here, not by the
 * library (it is given 0): the check and the write are one guarded UPDATE (recordPasskeyUse), so two replays at once
 * cannot both pass, and a counter that went backwards is told apart from a bad signature (it is audited).
 */
export async function verifyAssertion(
  db: Db,
  rp: RelyingParty,
  response: z.infer<typeof authenticationResponseSchema>,
  challenge: string,
): Promise<AssertionResult> {
  const passkey = await findPasskey(db, response.id);
  if (!passkey) return { ok: false, reason: 'unknown' };
  let info: Awaited<ReturnType<typeof verifyAuthenticationResponse>>['authenticationInfo'];
  try {
    const result = await verifyAuthenticationResponse({
      response: response as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpId,
      credential: { id: passkey.credentialId, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: 0 },
      requireUserVerification: true,
    });
    if (!result.verified) return { ok: false, reason: 'invalid' };
    info = result.authenticationInfo;
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  // A discoverable credential's assertion carries the user handle it was made for; it must be its owner's, so a
  // credential row that somehow points at another account never signs that account in.
  if (response.response.userHandle === undefined || response.response.userHandle !== passkey.userHandle) return { ok: false, reason: 'user-handle', passkey };
  if (!(await recordPasskeyUse(db, passkey.id, info.newCounter, info.credentialBackedUp)))
    return { ok: false, reason: 'counter', passkey, counter: info.newCounter };
  return { ok: true, passkey };
}
