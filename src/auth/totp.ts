import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * RFC 6238 TOTP (HMAC-SHA1, 30 s step, 6 digits): the parameters every
 * authenticator app supports without configuration. Times are Unix
 * milliseconds, like Date.now() and the injected clocks elsewhere.
 */

export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** 160 bits, the HMAC-SHA1 block-size recommendation of RFC 4226 §4. */
export const TOTP_SECRET_BYTES = 20;

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class Base32Error extends Error {
  readonly code = 'bad_base32';
}

/** RFC 4648 §6 base32, without padding (authenticator apps and otpauth URIs omit it). */
export function base32Encode(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const byte of data) {
    acc = ((acc << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET.charAt((acc >>> bits) & 31);
    }
  }
  if (bits > 0) out += BASE32_ALPHABET.charAt((acc << (5 - bits)) & 31);
  return out;
}

/**
 * Decodes base32. Lower case and trailing '=' padding are accepted because
 * people copy secrets by hand; impossible lengths, stray characters and
 * non-zero leftover bits are rejected so each secret has one spelling.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/=+$/, '').toUpperCase();
  // 1, 3 or 6 symbols in the last group cannot come from whole bytes.
  if ([1, 3, 6].includes(clean.length % 8)) throw new Base32Error(`invalid base32 length ${clean.length}`);
  const out = Buffer.alloc(Math.floor((clean.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let pos = 0;
  for (const ch of clean) {
    const v = BASE32_ALPHABET.indexOf(ch);
    if (v < 0) throw new Base32Error(`invalid base32 character ${JSON.stringify(ch)}`);
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new Base32Error('non-zero trailing bits in base32');
  return out;
}

/** A new shared secret for enrolment, base32 as shown to the user and put in the QR code. */
export function generateSecret(): string {
  return base32Encode(randomBytes(TOTP_SECRET_BYTES));
}

/** RFC 4226 HOTP: dynamic truncation of HMAC-SHA1(key, 8-byte big-endian counter). */
export function hotp(key: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('HOTP counter must be a non-negative integer');
  if (!Number.isInteger(digits) || digits < 6 || digits > 10) throw new RangeError('HOTP digits must be 6 to 10');
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The time step (counter) that contains `timeMs`. */
export function totpStep(timeMs: number, stepSeconds = TOTP_STEP_SECONDS): number {
  return Math.floor(timeMs / 1000 / stepSeconds);
}

export interface TotpOptions {
  digits?: number;
  stepSeconds?: number;
}

/** The code an authenticator shows at `timeMs` (Unix milliseconds). */
export function totpCode(secretB32: string, timeMs: number, opts: TotpOptions = {}): string {
  return hotp(base32Decode(secretB32), totpStep(timeMs, opts.stepSeconds), opts.digits);
}

export interface VerifyTotpOptions extends TotpOptions {
  /** Unix milliseconds. */
  now: number;
  /** Steps accepted either side of now, for clock drift and slow typing; default 1 (±30 s). */
  window?: number;
  /** The step accepted last time for this user: that step and earlier are refused (no replay). */
  lastUsedStep?: number | null;
}

const MAX_WINDOW = 10;

/**
 * Checks a code typed by the user. Returns the matched step, which the caller
 * must store as lastUsedStep, or null. Malformed codes are refused before any
 * HMAC; every step in the window is computed and compared in constant time so
 * the position of a match does not show in the timing. An invalid secret
 * throws: it is stored data, and a damaged row should fail loudly.
 */
export function verifyTotp(secretB32: string, code: string, opts: VerifyTotpOptions): number | null {
  const digits = opts.digits ?? TOTP_DIGITS;
  const window = opts.window ?? 1;
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new RangeError(`TOTP window must be an integer from 0 to ${MAX_WINDOW}`);
  }
  const key = base32Decode(secretB32);
  if (typeof code !== 'string' || code.length !== digits || !/^[0-9]+$/.test(code)) return null;
  const typed = Buffer.from(code, 'ascii');
  const current = totpStep(opts.now, opts.stepSeconds);
  const last = opts.lastUsedStep ?? -1;
  let matched: number | null = null;
  for (let step = current - window; step <= current + window; step++) {
    if (step < 0) continue;
    const same = timingSafeEqual(typed, Buffer.from(hotp(key, step, digits), 'ascii'));
    // Keep the first acceptable match but keep looping: constant work per call.
    if (same && step > last && matched === null) matched = step;
  }
  return matched;
}

export interface OtpauthUriOptions {
  issuer?: string;
  /** The account label shown in the app, typically the username or e-mail address. */
  account: string;
  secret: string;
  digits?: number;
  stepSeconds?: number;
}

/**
 * The Key URI Format enrolment link for a QR code:
 * otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
 * encodeURIComponent rather than URLSearchParams, because some apps show the
 * latter's '+' for a space literally.
 */
export function otpauthUri(opts: OtpauthUriOptions): string {
  const issuer = opts.issuer ?? 'Spindle';
  const secret = base32Encode(base32Decode(opts.secret));
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(opts.account)}`;
  const params: [string, string][] = [
    ['secret', secret],
    ['issuer', issuer],
    ['algorithm', 'SHA1'],
    ['digits', String(opts.digits ?? TOTP_DIGITS)],
    ['period', String(opts.stepSeconds ?? TOTP_STEP_SECONDS)],
  ];
  const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `otpauth://totp/${label}?${query}`;
}
