import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with scrypt. The encoded form carries its own parameters
 * (`scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64 without padding as in the PHC
 * string format), so the cost can be raised later: old hashes still verify,
 * and needsRehash() tells the caller to re-hash on the next successful sign-in.
 */

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
  saltBytes: number;
  keyBytes: number;
}

/** Current cost: N=2^15, r=8 needs 32 MiB per hash, the OWASP minimum for scrypt. */
export const SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({
  ln: 15,
  r: 8,
  p: 1,
  saltBytes: 16,
  keyBytes: 32,
});

/** Longer inputs are refused so a sign-in request cannot be used to burn CPU. */
export const MAX_PASSWORD_BYTES = 1024;

// Bounds for parameters read back from a stored string: a corrupted or hostile
// row must not make verify allocate gigabytes.
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export type PasswordPolicyCode = 'password_empty' | 'password_too_long';

export class PasswordPolicyError extends Error {
  constructor(readonly code: PasswordPolicyCode) {
    super(code === 'password_empty' ? 'password must not be empty' : `password must be at most ${MAX_PASSWORD_BYTES} bytes`);
  }
}

interface ParsedHash {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/**
 * NFC so the same password typed on different keyboards/OSes (precomposed vs.
 * combining accents) gives the same bytes, as RFC 8265 OpaqueString asks.
 */
function passwordBytes(pw: string): Buffer {
  return Buffer.from(pw.normalize('NFC'), 'utf8');
}

function policyViolation(bytes: Buffer): PasswordPolicyCode | null {
  if (bytes.length === 0) return 'password_empty';
  if (bytes.length > MAX_PASSWORD_BYTES) return 'password_too_long';
  return null;
}

function scryptAsync(pw: Buffer, salt: Buffer, keyBytes: number, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  // OpenSSL needs 128*r*(N+2) bytes for V plus 128*r*p for B; Node's default
  // maxmem (32 MiB) is exactly too small for N=2^15, r=8.
  const options: ScryptOptions = { N, r, p, maxmem: 128 * r * (N + p + 2) };
  return new Promise((resolve, reject) => {
    scrypt(pw, salt, keyBytes, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const b64 = (buf: Buffer) => buf.toString('base64').replace(/=+$/, '');

/** Strict: only canonical unpadded base64 round-trips, anything else is malformed. */
function fromB64(text: string): Buffer | null {
  const buf = Buffer.from(text, 'base64');
  return b64(buf) === text ? buf : null;
}

const ENCODED = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function parseHash(encoded: string): ParsedHash | null {
  if (typeof encoded !== 'string') return null;
  const m = ENCODED.exec(encoded);
  if (!m) return null;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  if (128 * r * (2 ** ln + p + 2) > MAX_SCRYPT_MEMORY) return null;
  const salt = fromB64(m[4] ?? '');
  const hash = fromB64(m[5] ?? '');
  if (!salt || salt.length < 8 || salt.length > 64) return null;
  if (!hash || hash.length < 16 || hash.length > 64) return null;
  return { ln, r, p, salt, hash };
}

/** Hashes a new password; throws PasswordPolicyError for empty or over-long input. */
export async function hashPassword(pw: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  const bytes = passwordBytes(pw);
  const violation = policyViolation(bytes);
  if (violation) throw new PasswordPolicyError(violation);
  const salt = randomBytes(params.saltBytes);
  const key = await scryptAsync(bytes, salt, params.keyBytes, params.ln, params.r, params.p);
  return `scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/**
 * True only if `pw` matches. Malformed or out-of-bounds stored strings and
 * passwords that could never have been stored (empty, too long) give false
 * rather than an exception, so a damaged row reads as "wrong password".
 */
export async function verifyPassword(pw: string, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (!parsed) return false;
  const bytes = passwordBytes(pw);
  if (policyViolation(bytes)) return false;
  const key = await scryptAsync(bytes, parsed.salt, parsed.hash.length, parsed.ln, parsed.r, parsed.p);
  return timingSafeEqual(key, parsed.hash);
}

/** True when the stored hash is malformed or was made with other than the current parameters. */
export function needsRehash(encoded: string, params: ScryptParams = SCRYPT_PARAMS): boolean {
  const parsed = parseHash(encoded);
  if (!parsed) return true;
  return (
    parsed.ln !== params.ln ||
    parsed.r !== params.r ||
    parsed.p !== params.p ||
    parsed.salt.length !== params.saltBytes ||
    parsed.hash.length !== params.keyBytes
  );
}

// A well-formed hash no password can match (random key, not derived): verifying
// against it costs one full scrypt with the current parameters and no more.
const DUMMY_HASH = `scrypt$ln=${SCRYPT_PARAMS.ln},r=${SCRYPT_PARAMS.r},p=${SCRYPT_PARAMS.p}$${b64(
  randomBytes(SCRYPT_PARAMS.saltBytes),
)}$${b64(randomBytes(SCRYPT_PARAMS.keyBytes))}`;

/**
 * Spends the same time as verifyPassword against a current-parameter hash and
 * resolves false. Call it for unknown users (with the typed password, so the
 * empty/too-long fast path matches too) so response time does not reveal
 * whether an account exists. Hashes with older, cheaper parameters are faster
 * to verify; needsRehash() upgrades them on the next sign-in.
 */
export async function dummyVerify(pw = 'dummy-password'): Promise<false> {
  await verifyPassword(pw, DUMMY_HASH);
  return false;
}

// 32 symbols (5 bits each, so a random byte & 31 is uniform) with no 0/o, 1/l lookalikes.
const PASSWORD_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** A random password for the first-start admin: 20 symbols = 100 bits. */
export function generatePassword(length = 20): string {
  if (!Number.isInteger(length) || length < 12 || length > 256) {
    throw new RangeError('generated password length must be an integer from 12 to 256');
  }
  let out = '';
  for (const byte of randomBytes(length)) out += PASSWORD_ALPHABET.charAt(byte & 31);
  return out;
}
