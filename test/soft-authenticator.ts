import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';

/**
 * A software WebAuthn authenticator for in-process tests: ES256 keys from node:crypto, attestation "none", and
 * assertions signed as a real authenticator signs them (authenticatorData ‖ SHA-256(clientDataJSON)), so the server's
 * verification (by @simplewebauthn/server) runs for real. What a test wants wrong (a counter, a user handle, the user
 * verification flag, the origin) it asks for explicitly.
 */

/** The little CBOR (RFC 8949) attestation objects and COSE keys need: maps, ints, byte and text strings. */
function cbor(value: unknown): Buffer {
  const head = (major: number, n: number): Buffer => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
    if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  if (value instanceof Map) {
    const parts = [head(5, value.size)];
    for (const [k, v] of value) parts.push(cbor(k), cbor(v));
    return Buffer.concat(parts);
  }
  throw new Error(`cbor: cannot encode ${typeof value}`);
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

interface Credential {
  id: Buffer;
  privateKey: KeyObject;
  publicKey: KeyObject;
  userHandle: string;
  counter: number;
}

export interface AuthenticatorOptions {
  origin: string;
  rpId: string;
  /** Backed up (a synced passkey): sets BE and BS. */
  synced?: boolean;
  /** How much the signature counter goes up per assertion; 0 for an authenticator without one (as synced ones are). */
  counterStep?: number;
}

/** Options as the server sends them (the JSON of PublicKeyCredentialCreationOptions / RequestOptions). */
export interface CreationOptions {
  challenge: string;
  rp: { id?: string };
  user: { id: string };
  excludeCredentials?: Array<{ id: string }>;
  authenticatorSelection?: { userVerification?: string; residentKey?: string };
}
export interface RequestOptions {
  challenge: string;
  rpId?: string;
}

export interface AssertionOverrides {
  /** Which credential (default: the first made). */
  credentialId?: string;
  counter?: number;
  userHandle?: string | null;
  userVerified?: boolean;
  origin?: string;
}

export class SoftAuthenticator {
  readonly #opts: AuthenticatorOptions;
  readonly #credentials: Credential[] = [];

  constructor(opts: AuthenticatorOptions) {
    this.#opts = opts;
  }

  #flags(extra: number, userVerified = true): number {
    return FLAG_UP | (userVerified ? FLAG_UV : 0) | (this.#opts.synced ? FLAG_BE | FLAG_BS : 0) | extra;
  }

  #authData(flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter >>> 0);
    return Buffer.concat([sha256(this.#opts.rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  /** navigator.credentials.create(): a new discoverable credential for `options.user.id`. */
  register(options: CreationOptions): Record<string, unknown> {
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    if (this.#credentials.some((c) => excluded.has(b64url(c.id)))) throw Object.assign(new Error('excluded'), { name: 'InvalidStateError' });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = cbor(
      new Map<number, unknown>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x ?? '', 'base64url')],
        [-3, Buffer.from(jwk.y ?? '', 'base64url')],
      ]),
    );
    const credential: Credential = { id: randomBytes(16), privateKey, publicKey, userHandle: options.user.id, counter: 0 };
    this.#credentials.push(credential);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const attested = Buffer.concat([Buffer.alloc(16) /* AAGUID: none */, idLength, credential.id, coseKey]);
    const authData = this.#authData(this.#flags(FLAG_AT), 0, attested);
    const clientDataJSON = Buffer.from(
      JSON.stringify({ type: 'webauthn.create', challenge: options.challenge, origin: this.#opts.origin, crossOrigin: false }),
    );
    const attestationObject = cbor(
      new Map<string, unknown>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get(): an assertion by one of this authenticator's credentials. */
  assert(options: RequestOptions, o: AssertionOverrides = {}): Record<string, unknown> {
    const credential = o.credentialId ? this.#credentials.find((c) => b64url(c.id) === o.credentialId) : this.#credentials[0];
    if (!credential) throw new Error('no such credential on this authenticator');
    if (o.counter === undefined) credential.counter += this.#opts.counterStep ?? 1;
    const counter = o.counter ?? credential.counter;
    const authData = this.#authData(this.#flags(0, o.userVerified ?? true), counter);
    const clientDataJSON = Buffer.from(
      JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin: o.origin ?? this.#opts.origin, crossOrigin: false }),
    );
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey);
    const userHandle = o.userHandle === undefined ? credential.userHandle : o.userHandle;
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(userHandle === null ? {} : { userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** The id of the credential made `index`-th (base64url, as the server stores it). */
  credentialId(index = 0): string {
    const c = this.#credentials[index];
    if (!c) throw new Error('no such credential');
    return b64url(c.id);
  }

  /** A copy holding the same keys (a cloned authenticator): its counter starts where this one's is now. */
  clone(): SoftAuthenticator {
    const copy = new SoftAuthenticator(this.#opts);
    for (const c of this.#credentials) copy.#credentials.push({ ...c });
    return copy;
  }
}
