import { describe, expect, it } from 'vitest';
import {
  Base32Error,
  base32Decode,
  base32Encode,
  generateSecret,
  hotp,
  otpauthUri,
  totpCode,
  totpStep,
  verifyTotp,
} from '../../src/auth/totp.js';

describe('base32 (RFC 4648 §10 test vectors, unpadded)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ];

  it.each(vectors)('encodes %j as %s and back', (plain, encoded) => {
    expect(base32Encode(Buffer.from(plain))).toBe(encoded);
    expect(base32Decode(encoded).toString()).toBe(plain);
  });

  it('accepts the padded and lower-case spellings people paste', () => {
    expect(base32Decode('MZXW6YQ=').toString()).toBe('foob');
    expect(base32Decode('my======').toString()).toBe('f');
    expect(base32Decode('mzxw6ytboi').toString()).toBe('foobar');
  });

  it('round-trips arbitrary bytes', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (let n = 0; n <= 40; n++) expect(base32Decode(base32Encode(all.subarray(0, n)))).toEqual(all.subarray(0, n));
    expect(base32Decode(base32Encode(all))).toEqual(all);
  });

  it('rejects characters outside the alphabet, impossible lengths and stray trailing bits', () => {
    for (const bad of ['MZXW1', 'MZXW8', 'MZ W6', 'M', 'MZX', 'MZXW6Y', 'MZ', 'MZXR', 'MZXW7']) {
      expect(() => base32Decode(bad), bad).toThrow(Base32Error);
    }
  });
});

describe('TOTP (RFC 6238 Appendix B, SHA1)', () => {
  const secret = base32Encode(Buffer.from('12345678901234567890'));
  const vectors: [number, string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];

  it.each(vectors)('at %d s gives %s with 8 digits', (seconds, code) => {
    expect(totpCode(secret, seconds * 1000, { digits: 8 })).toBe(code);
    // Same truncated value modulo 10^6: the 6-digit code is the last six digits.
    expect(totpCode(secret, seconds * 1000)).toBe(code.slice(-6));
  });

  it('matches the RFC 4226 Appendix D HOTP values', () => {
    const key = Buffer.from('12345678901234567890');
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => expect(hotp(key, counter)).toBe(code));
  });

  it('steps every 30 seconds', () => {
    expect(totpStep(29_999)).toBe(0);
    expect(totpStep(30_000)).toBe(1);
    expect(totpStep(59_000)).toBe(1);
  });

  it('generates 160-bit secrets as 32 base32 characters', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)).toHaveLength(20);
    expect(generateSecret()).not.toBe(a);
  });
});

describe('verifyTotp', () => {
  const secret = generateSecret();
  const now = 1_700_000_015_000;
  const step = totpStep(now);
  const codeAt = (s: number) => totpCode(secret, s * 30_000);

  it('accepts the current step and one either side by default, returning the step', () => {
    expect(verifyTotp(secret, codeAt(step), { now })).toBe(step);
    expect(verifyTotp(secret, codeAt(step - 1), { now })).toBe(step - 1);
    expect(verifyTotp(secret, codeAt(step + 1), { now })).toBe(step + 1);
  });

  it('refuses codes outside the window', () => {
    const far = [step - 2, step + 2].map(codeAt).filter((c) => ![step - 1, step, step + 1].map(codeAt).includes(c));
    for (const code of far) expect(verifyTotp(secret, code, { now })).toBeNull();
    expect(verifyTotp(secret, codeAt(step - 1), { now, window: 0 })).toBeNull();
    expect(verifyTotp(secret, codeAt(step - 2), { now, window: 2 })).toBe(step - 2);
  });

  it('refuses a replayed code and any step not after the last one used', () => {
    const used = verifyTotp(secret, codeAt(step), { now });
    expect(used).toBe(step);
    expect(verifyTotp(secret, codeAt(step), { now, lastUsedStep: used })).toBeNull();
    expect(verifyTotp(secret, codeAt(step - 1), { now, lastUsedStep: used })).toBeNull();
    expect(verifyTotp(secret, codeAt(step + 1), { now, lastUsedStep: used })).toBe(step + 1);
    expect(verifyTotp(secret, codeAt(step), { now, lastUsedStep: step - 1 })).toBe(step);
    expect(verifyTotp(secret, codeAt(step), { now, lastUsedStep: null })).toBe(step);
  });

  it('refuses codes of the wrong length or with anything but ASCII digits', () => {
    const good = codeAt(step);
    for (const bad of ['', good.slice(1), `${good}0`, ` ${good.slice(1)}`, `${good.slice(0, 5)}a`, '１２３４５６', '12 456', '-12345', '1e5000']) {
      expect(verifyTotp(secret, bad, { now }), JSON.stringify(bad)).toBeNull();
    }
    expect(verifyTotp(secret, 12345 as unknown as string, { now })).toBeNull();
  });

  it('works with 8 digits when asked', () => {
    const code = totpCode(secret, now, { digits: 8 });
    expect(code).toMatch(/^\d{8}$/);
    expect(verifyTotp(secret, code, { now, digits: 8 })).toBe(step);
    expect(verifyTotp(secret, code.slice(-6), { now, digits: 8 })).toBeNull();
  });

  it('ignores steps before the epoch instead of failing', () => {
    expect(verifyTotp(secret, totpCode(secret, 0), { now: 0 })).toBe(0);
  });

  it('fails loudly on a damaged secret or a silly window', () => {
    expect(() => verifyTotp('not base32!', '123456', { now })).toThrow(Base32Error);
    expect(() => verifyTotp(secret, '123456', { now, window: -1 })).toThrow(RangeError);
    expect(() => verifyTotp(secret, '123456', { now, window: 1.5 })).toThrow(RangeError);
    expect(() => verifyTotp(secret, '123456', { now, window: 100 })).toThrow(RangeError);
  });
});

describe('otpauthUri', () => {
  it('builds the Key URI Format link with issuer in label and query', () => {
    const secret = 'JBSWY3DPEHPK3PXP';
    expect(otpauthUri({ issuer: 'Spindle', account: 'alice@example.com', secret })).toBe(
      'otpauth://totp/Spindle:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Spindle&algorithm=SHA1&digits=6&period=30',
    );
    expect(otpauthUri({ account: 'alice', secret })).toMatch(/^otpauth:\/\/totp\/Spindle:alice\?secret=JBSWY3DPEHPK3PXP&issuer=Spindle&/);
  });

  it('percent-encodes spaces, colons and other reserved characters (never "+")', () => {
    const uri = otpauthUri({ issuer: 'Acme Mail & Co', account: 'bob:x y/ü?#', secret: 'jbswy3dpehpk3pxp' });
    expect(uri).toBe(
      'otpauth://totp/Acme%20Mail%20%26%20Co:bob%3Ax%20y%2F%C3%BC%3F%23?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Mail%20%26%20Co&algorithm=SHA1&digits=6&period=30',
    );
    const url = new URL(uri);
    expect(url.protocol).toBe('otpauth:');
    expect(url.searchParams.get('issuer')).toBe('Acme Mail & Co');
    expect(decodeURIComponent(url.pathname.split(':')[1] ?? '')).toBe('bob:x y/ü?#');
  });

  it('refuses a secret that is not base32', () => {
    expect(() => otpauthUri({ account: 'a', secret: 'nope!' })).toThrow(Base32Error);
  });
});
