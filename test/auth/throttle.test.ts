import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LOGIN_LIMITS,
  accountThrottleKey,
  createLoginThrottle,
  ipThrottleKey,
  type LoginThrottle,
  type LoginThrottleOptions,
} from '../../src/auth/throttle.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

function setup(opts: Omit<LoginThrottleOptions, 'now'> = {}) {
  let t = 1_700_000_000_000;
  const throttle = createLoginThrottle({ ...opts, now: () => t });
  return {
    throttle,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/** One refused sign-in, the way the caller drives it: check, then report. */
function failOnce(throttle: LoginThrottle, account: string, ip: string): void {
  expect(throttle.check(account, ip)).toEqual({ allowed: true });
  throttle.recordFailure(account, ip);
}

describe('per-account throttle', () => {
  it('allows three free failures, then waits of 1 s, 2 s, 4 s … capped at 30 s', () => {
    const { throttle, advance } = setup({ account: { lockAfterFailures: 20 } });
    for (let i = 0; i < 3; i++) failOnce(throttle, 'alice', '192.0.2.1');
    for (const wait of [1, 2, 4, 8, 16, 30, 30, 30].map((s) => s * SECOND)) {
      // A different address each time: the account alone must enforce this.
      expect(throttle.check('alice', '198.51.100.7')).toEqual({ allowed: false, retryAfterMs: wait, reason: 'slow_down' });
      advance(wait - 1);
      expect(throttle.check('alice', '198.51.100.7')).toEqual({ allowed: false, retryAfterMs: 1, reason: 'slow_down' });
      advance(1);
      failOnce(throttle, 'alice', `203.0.113.${wait / SECOND}`);
    }
  });

  it('locks the account for 15 minutes on the 10th failure within 15 minutes', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 10; i++) {
      const d = throttle.check('alice', '192.0.2.1');
      if (!d.allowed) advance(d.retryAfterMs);
      else throttle.release('alice', '192.0.2.1'); // the probe reserved an attempt
      failOnce(throttle, 'alice', '192.0.2.1');
    }
    expect(throttle.check('alice', '192.0.2.99')).toEqual({ allowed: false, retryAfterMs: 15 * MINUTE, reason: 'locked' });
    advance(15 * MINUTE - 1);
    expect(throttle.check('alice', '192.0.2.99')).toMatchObject({ allowed: false, reason: 'locked', retryAfterMs: 1 });
    advance(1);
    // After the lockout the name starts over with its free failures.
    for (let i = 0; i < 3; i++) failOnce(throttle, 'alice', '192.0.2.99');
    expect(throttle.check('alice', '192.0.2.99')).toMatchObject({ allowed: false, reason: 'slow_down' });
  });

  it('does not extend a lockout for failures reported while it runs', () => {
    const { throttle, advance } = setup({ account: { freeFailures: 2, lockAfterFailures: 2 } });
    failOnce(throttle, 'bob', '192.0.2.1');
    expect(throttle.check('bob', '192.0.2.1').allowed).toBe(true);
    throttle.recordFailure('bob', '192.0.2.1'); // the second failure locks
    advance(MINUTE);
    throttle.recordFailure('bob', '192.0.2.1'); // a straggler
    expect(throttle.check('bob', '192.0.2.1')).toMatchObject({ reason: 'locked', retryAfterMs: 14 * MINUTE });
  });

  it('forgets failures once the window has passed', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 3; i++) failOnce(throttle, 'alice', '192.0.2.1');
    advance(15 * MINUTE);
    for (let i = 0; i < 3; i++) failOnce(throttle, 'alice', '192.0.2.1');
    expect(throttle.check('alice', '192.0.2.1')).toMatchObject({ allowed: false, retryAfterMs: SECOND });
  });

  it('treats existing and unknown names alike and ignores case', () => {
    const a = setup();
    const b = setup();
    const seq = (th: LoginThrottle, name: string) =>
      Array.from({ length: 6 }, () => {
        const d = th.check(name, '192.0.2.1');
        if (d.allowed) th.recordFailure(name, '192.0.2.1');
        return d;
      });
    expect(seq(a.throttle, 'alice')).toEqual(seq(b.throttle, 'no-such-user-xyz'));
    const c = setup();
    for (const name of ['Alice', 'ALICE', ' alice ']) failOnce(c.throttle, name, '192.0.2.1');
    expect(c.throttle.check('alice', '192.0.2.1')).toMatchObject({ allowed: false, reason: 'slow_down' });
    expect(accountThrottleKey('Ä'.normalize('NFD'))).toBe('ä');
  });

  it('clears the account counter on success', () => {
    const { throttle } = setup();
    for (let i = 0; i < 3; i++) failOnce(throttle, 'alice', '192.0.2.1');
    throttle.recordSuccess('alice', '192.0.2.1');
    expect(throttle.check('alice', '192.0.2.1')).toEqual({ allowed: true });
    expect(throttle.size().accounts).toBe(1); // only the new reservation
  });
});

describe('per-address throttle', () => {
  it('slows an address spraying many names after 10 failures and locks it at 50', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 10; i++) failOnce(throttle, `user${i}`, '192.0.2.1');
    expect(throttle.check('fresh', '192.0.2.1')).toEqual({ allowed: false, retryAfterMs: SECOND, reason: 'slow_down' });
    expect(throttle.check('fresh', '192.0.2.2')).toEqual({ allowed: true }); // other addresses unaffected
    throttle.release('fresh', '192.0.2.2');
    const waits: number[] = [];
    for (let i = 10; i < 50; i++) {
      const d = throttle.check(`user${i}`, '192.0.2.1');
      if (!d.allowed) {
        waits.push(d.retryAfterMs);
        advance(d.retryAfterMs);
      }
      failOnce(throttle, `user${i}`, '192.0.2.1');
    }
    expect(waits.slice(0, 5)).toEqual([1, 2, 4, 5, 5].map((s) => s * SECOND));
    expect(throttle.check('someone', '192.0.2.1')).toEqual({ allowed: false, retryAfterMs: 15 * MINUTE, reason: 'locked' });
  });

  it('keeps the address counter on success, so one valid account cannot reset it', () => {
    const { throttle } = setup({ ip: { freeFailures: 3 } });
    for (let i = 0; i < 3; i++) failOnce(throttle, `victim${i}`, '192.0.2.1');
    throttle.recordSuccess('attacker', '192.0.2.1');
    expect(throttle.check('victim9', '192.0.2.1')).toMatchObject({ allowed: false, reason: 'slow_down' });
  });

  it('groups IPv6 clients by /64', () => {
    const { throttle } = setup({ ip: { freeFailures: 2 } });
    failOnce(throttle, 'a', '2001:db8:1:2::1');
    failOnce(throttle, 'b', '2001:db8:1:2:ffff:ffff:ffff:ffff');
    expect(throttle.check('c', '2001:0db8:0001:0002:1234::9')).toMatchObject({ allowed: false, reason: 'slow_down' });
    expect(throttle.check('c', '2001:db8:1:3::1')).toEqual({ allowed: true });
  });

  it('reports a lockout in preference to a slow-down, with the longer wait', () => {
    const { throttle } = setup({ account: { freeFailures: 1, lockAfterFailures: 1 }, ip: { freeFailures: 1 } });
    failOnce(throttle, 'alice', '192.0.2.1');
    expect(throttle.check('alice', '192.0.2.1')).toEqual({ allowed: false, retryAfterMs: 15 * MINUTE, reason: 'locked' });
    expect(throttle.check('bob', '192.0.2.1')).toEqual({ allowed: false, retryAfterMs: SECOND, reason: 'slow_down' });
  });
});

describe('ipThrottleKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:0201', '192.0.2.1'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0DB8:0000:0000:ffff::1', '2001:db8:0:0::/64'],
    ['[2001:db8:a:b:c:d:e:f]', '2001:db8:a:b::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['1:2:3:4:5:6:7::', '1:2:3:4::/64'],
    ['unix-socket', 'unix-socket'],
  ])('%s → %s', (ip, key) => {
    expect(ipThrottleKey(ip)).toBe(key);
  });
});

describe('parallel attempts', () => {
  it('lets only the free failures through at once, then one attempt at a time', () => {
    const { throttle, advance } = setup();
    const burst = Array.from({ length: 20 }, () => throttle.check('alice', '192.0.2.1'));
    expect(burst.filter((d) => d.allowed)).toHaveLength(3);
    expect(burst[3]).toEqual({ allowed: false, retryAfterMs: SECOND, reason: 'slow_down' });
    for (let i = 0; i < 3; i++) throttle.recordFailure('alice', '192.0.2.1');
    advance(SECOND);
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(true);
    expect(throttle.check('alice', '192.0.2.1')).toMatchObject({ allowed: false, reason: 'slow_down' });
  });

  it('gives a reservation back on release and lets an unreported one lapse', () => {
    const { throttle, advance } = setup({ account: { freeFailures: 1 } });
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(true);
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(false);
    throttle.release('alice', '192.0.2.1');
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(true);
    advance(DEFAULT_LOGIN_LIMITS.reservationTtlMs - 1);
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(false);
    advance(1);
    expect(throttle.check('alice', '192.0.2.1').allowed).toBe(true);
  });
});

describe('memory', () => {
  it('stays within maxTrackedKeys under a flood of distinct names and addresses', () => {
    const { throttle, advance } = setup();
    const cap = DEFAULT_LOGIN_LIMITS.maxTrackedKeys;
    for (let i = 0; i < 3 * cap; i++) {
      const ip = `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
      // No expect() per step: 30 000 of them would dominate the run time.
      if (!throttle.check(`user-${i}`, ip).allowed) throw new Error(`refused at ${i}`);
      throttle.recordFailure(`user-${i}`, ip);
      if (i % 1000 === 0) advance(1);
      const size = throttle.size();
      if (size.accounts > cap || size.ips > cap) throw new Error(`over the cap at ${i}: ${JSON.stringify(size)}`);
    }
    expect(throttle.size()).toEqual({ accounts: cap, ips: cap });
  });

  it('bounds memory even for absurdly long names', () => {
    expect(accountThrottleKey('x'.repeat(1_000_000))).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('evicts unlocked entries before a lockout, so a flood cannot lift it', () => {
    const { throttle } = setup({ maxTrackedKeys: 50, account: { freeFailures: 1, lockAfterFailures: 1 } });
    failOnce(throttle, 'alice', '192.0.2.1');
    for (let i = 0; i < 500; i++) throttle.check(`junk-${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(throttle.size().accounts).toBe(50);
    expect(throttle.check('alice', '192.0.2.200')).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('drops entries that have nothing left to remember', () => {
    const { throttle, advance } = setup();
    failOnce(throttle, 'alice', '192.0.2.1');
    advance(15 * MINUTE);
    expect(throttle.check('alice', '192.0.2.1')).toEqual({ allowed: true });
    throttle.recordSuccess('alice', '192.0.2.1');
    expect(throttle.size()).toEqual({ accounts: 0, ips: 0 });
  });
});

describe('limits', () => {
  it('exports the documented defaults, frozen', () => {
    expect(DEFAULT_LOGIN_LIMITS).toEqual({
      account: { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfterFailures: 10, windowMs: 15 * MINUTE, lockoutMs: 15 * MINUTE },
      ip: { freeFailures: 10, baseDelayMs: 1000, maxDelayMs: 5000, lockAfterFailures: 50, windowMs: 15 * MINUTE, lockoutMs: 15 * MINUTE },
      maxTrackedKeys: 10_000,
      reservationTtlMs: 10_000,
    });
    expect(Object.isFrozen(DEFAULT_LOGIN_LIMITS.account)).toBe(true);
  });

  it('refuses nonsensical limits', () => {
    expect(() => createLoginThrottle({ maxTrackedKeys: 0 })).toThrow(RangeError);
    expect(() => createLoginThrottle({ account: { lockAfterFailures: 0 } })).toThrow(RangeError);
    expect(() => createLoginThrottle({ ip: { freeFailures: 60 } })).toThrow(RangeError);
    expect(() => createLoginThrottle({ account: { windowMs: -1 } })).toThrow(RangeError);
  });
});
