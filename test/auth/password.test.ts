import { scryptSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_PASSWORD_BYTES,
  PasswordPolicyError,
  SCRYPT_PARAMS,
  dummyVerify,
  generatePassword,
  hashPassword,
  needsRehash,
  verifyPassword,
  type ScryptParams,
} from '../../src/auth/password.js';

// Real-cost hashes are few and shared: scrypt at N=2^15 is deliberately slow.
const CHEAP: ScryptParams = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };
const ENCODED = /^scrypt\$ln=15,r=8,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

describe('hashPassword / verifyPassword at the current cost', () => {
  let encoded = '';
  beforeAll(async () => {
    encoded = await hashPassword('correct horse battery staple');
  });

  it('produces a self-describing string with a 16-byte salt and 32-byte key', () => {
    const m = ENCODED.exec(encoded);
    expect(m).not.toBeNull();
    expect(Buffer.from(m?.[1] ?? '', 'base64')).toHaveLength(16);
    expect(Buffer.from(m?.[2] ?? '', 'base64')).toHaveLength(32);
    expect(needsRehash(encoded)).toBe(false);
  });

  it('accepts the right password and refuses a wrong one', async () => {
    expect(await verifyPassword('correct horse battery staple', encoded)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', encoded)).toBe(false);
  });

  it('refuses when a single byte of the stored key is changed', async () => {
    const parts = encoded.split('$');
    const key = Buffer.from(parts[3] ?? '', 'base64');
    key[0] = (key[0] ?? 0) ^ 1;
    parts[3] = key.toString('base64').replace(/=+$/, '');
    expect(await verifyPassword('correct horse battery staple', parts.join('$'))).toBe(false);
  });

  it('dummyVerify resolves false and costs about as much as a real verify', async () => {
    const time = async (f: () => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      await f();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const real: number[] = [];
    const dummy: number[] = [];
    for (let i = 0; i < 3; i++) {
      real.push(await time(() => verifyPassword('wrong guess', encoded)));
      dummy.push(await time(() => dummyVerify('wrong guess')));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] ?? 0;
    // Loose bounds: the machine may be busy, but a skipped scrypt would be ~100x off.
    expect(median(dummy) / median(real)).toBeGreaterThan(0.4);
    expect(median(dummy) / median(real)).toBeLessThan(2.5);
    expect(await dummyVerify()).toBe(false);
  });
});

describe('hashPassword / verifyPassword parameters and policy', () => {
  it('salts every hash', async () => {
    const [a, b] = await Promise.all([hashPassword('same', CHEAP), hashPassword('same', CHEAP)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('reads the cost from the stored string, so older hashes verify and ask for a rehash', async () => {
    const old = await hashPassword('pw', CHEAP);
    expect(old.startsWith('scrypt$ln=10,r=8,p=1$')).toBe(true);
    expect(await verifyPassword('pw', old)).toBe(true);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(old, CHEAP)).toBe(false);
  });

  it('verifies an independently computed scrypt hash with another key length', async () => {
    const salt = Buffer.from('0123456789abcdef');
    const key = scryptSync('interop', salt, 64, { N: 1024, r: 8, p: 2 });
    const enc = `scrypt$ln=10,r=8,p=2$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
    expect(await verifyPassword('interop', enc)).toBe(true);
    expect(needsRehash(enc)).toBe(true);
  });

  it('treats NFC and NFD spellings of a password as the same', async () => {
    const enc = await hashPassword('caf\u00e9', CHEAP);
    expect(await verifyPassword('cafe\u0301', enc)).toBe(true);
  });

  it('rejects empty passwords and ones over 1024 UTF-8 bytes', async () => {
    await expect(hashPassword('')).rejects.toMatchObject({ code: 'password_empty' });
    await expect(hashPassword('a'.repeat(MAX_PASSWORD_BYTES + 1))).rejects.toBeInstanceOf(PasswordPolicyError);
    // 513 characters but 1026 bytes: the limit is on bytes.
    await expect(hashPassword('\u00e9'.repeat(513))).rejects.toMatchObject({ code: 'password_too_long' });
    const longest = 'b'.repeat(MAX_PASSWORD_BYTES);
    const enc = await hashPassword(longest, CHEAP);
    expect(await verifyPassword(longest, enc)).toBe(true);
    expect(await verifyPassword(`${longest}b`, enc)).toBe(false);
    expect(await verifyPassword('', enc)).toBe(false);
  });

  it('returns false, never throws, for malformed stored strings', async () => {
    const salt = 'MDEyMzQ1Njc4OWFiY2RlZg';
    const key = 'A'.repeat(43);
    // Control: the pieces themselves are well formed, so each case below fails for its own reason.
    expect(needsRehash(`scrypt$ln=15,r=8,p=1$${salt}$${key}`)).toBe(false);
    const bad = [
      '',
      'garbage',
      '$2b$12$abcdefghijklmnopqrstuuQ4x7Zg2vXb1bZbZbZbZbZbZbZbZbZbZ',
      `scrypt$ln=15,r=8,p=1$${salt}`,
      `scrypt$ln=15,r=8$${salt}$${key}`,
      `scrypt$ln=15,r=8,p=1$${salt}$${key}$extra`,
      `scrypt$ln=0,r=8,p=1$${salt}$${key}`,
      `scrypt$ln=40,r=8,p=1$${salt}$${key}`,
      `scrypt$ln=15,r=0,p=1$${salt}$${key}`,
      `scrypt$ln=20,r=32,p=1$${salt}$${key}`, // 4 GiB: refused before allocating
      `scrypt$ln=15,r=8,p=1$${salt}==$${key}`,
      `scrypt$ln=15,r=8,p=1$${salt}$${key.slice(0, 10)}`,
      `scrypt$ln=15,r=8,p=1$bad-salt!$${key}`,
      `SCRYPT$ln=15,r=8,p=1$${salt}$${key}`,
      ` scrypt$ln=15,r=8,p=1$${salt}$${key}`,
    ];
    for (const enc of bad) {
      await expect(verifyPassword('pw', enc), enc).resolves.toBe(false);
      expect(needsRehash(enc), enc).toBe(true);
    }
    await expect(verifyPassword('pw', null as unknown as string)).resolves.toBe(false);
  });
});

describe('generatePassword', () => {
  it('makes 20 unambiguous characters by default, different each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const pw = generatePassword();
      expect(pw).toMatch(/^[a-km-np-z2-9]{20}$/);
      seen.add(pw);
    }
    expect(seen.size).toBe(200);
    expect(generatePassword(32)).toHaveLength(32);
  });

  it('uses all 32 symbols and none of 0, 1, l, o', () => {
    const all = new Set(Array.from({ length: 100 }, () => generatePassword(64)).join(''));
    expect(all.size).toBe(32);
    for (const c of '01lo') expect(all.has(c)).toBe(false);
  });

  it('refuses lengths too short to be safe', () => {
    expect(() => generatePassword(8)).toThrow(RangeError);
    expect(() => generatePassword(20.5)).toThrow(RangeError);
  });

  it('exports the current parameters', () => {
    expect(SCRYPT_PARAMS).toEqual({ ln: 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 });
    expect(Object.isFrozen(SCRYPT_PARAMS)).toBe(true);
  });
});
