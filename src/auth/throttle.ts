import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Brute-force protection for sign-in, kept in memory (one process, and a
 * restart forgetting counters only hands an attacker one more free burst).
 *
 * Two counters per attempt: the typed account name and the client address
 * (IPv6 grouped by /64, since one host usually owns a whole /64). Each counter
 * allows a few free failures, then makes every further attempt wait an
 * exponentially growing delay after the last failure, and locks out after too
 * many failures in a window. The account counter is keyed by the name as typed,
 * whether or not such an account exists, so throttling reveals nothing.
 *
 * Usage, per sign-in request:
 *   const d = throttle.check(name, ip);          // refuse with Retry-After if !d.allowed
 *   const ok = user ? await verifyPassword(...) : await dummyVerify(pw);
 *   ok ? throttle.recordSuccess(name, ip) : throttle.recordFailure(name, ip);
 *
 * An allowed check() reserves the attempt until it is reported, so a burst of
 * parallel requests cannot all pass check() while the slow password hashes run:
 * in-flight attempts count against the free failures, and beyond those only
 * one attempt at a time is let through. Report every allowed check with exactly
 * one recordSuccess/recordFailure, or release() if no password was checked;
 * an unreported reservation lapses after reservationTtlMs.
 */

export interface ThrottleRule {
  /** Failures allowed without delay. */
  freeFailures: number;
  /** Wait after the first delayed failure; doubles with each further one. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures within windowMs (counted from the first) that trigger a lockout. */
  lockAfterFailures: number;
  windowMs: number;
  lockoutMs: number;
}

export interface LoginThrottleLimits {
  account: ThrottleRule;
  ip: ThrottleRule;
  /** Cap on tracked keys, separately for accounts and for addresses; the least recently active go first. */
  maxTrackedKeys: number;
  /** How long an allowed check() holds its reservation if never reported. */
  reservationTtlMs: number;
}

const MINUTE = 60_000;

/**
 * Account: 3 free failures, then waits of 1, 2, 4, 8, 16, 30, 30 s; the 10th
 * failure within 15 min locks the name for 15 min (about 10 guesses per 16.5 min).
 * Address: looser, since people behind one NAT share it: 10 free, waits of
 * 1, 2, 4 then 5 s, the 50th failure within 15 min locks it for 15 min.
 */
export const DEFAULT_LOGIN_LIMITS: Readonly<LoginThrottleLimits> = Object.freeze({
  account: Object.freeze({
    freeFailures: 3,
    baseDelayMs: 1_000,
    maxDelayMs: 30_000,
    lockAfterFailures: 10,
    windowMs: 15 * MINUTE,
    lockoutMs: 15 * MINUTE,
  }),
  ip: Object.freeze({
    freeFailures: 10,
    baseDelayMs: 1_000,
    maxDelayMs: 5_000,
    lockAfterFailures: 50,
    windowMs: 15 * MINUTE,
    lockoutMs: 15 * MINUTE,
  }),
  maxTrackedKeys: 10_000,
  reservationTtlMs: 10_000,
});

export type ThrottleDecision =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; reason: 'locked' | 'slow_down' };

export interface LoginThrottleOptions {
  /** Clock in milliseconds; Date.now by default, a fake one in tests. */
  now?: () => number;
  account?: Partial<ThrottleRule>;
  ip?: Partial<ThrottleRule>;
  maxTrackedKeys?: number;
  reservationTtlMs?: number;
}

export interface LoginThrottle {
  check(account: string, ip: string): ThrottleDecision;
  recordFailure(account: string, ip: string): void;
  /**
   * Forgets the account's failures. The address counter only loses this
   * attempt's reservation: wiping it would let an attacker who owns one valid
   * account reset the per-address limit between guesses at other accounts.
   */
  recordSuccess(account: string, ip: string): void;
  /** Gives back an allowed check() that ended without a password check. */
  release(account: string, ip: string): void;
  /** Tracked keys, for tests and metrics. */
  size(): { accounts: number; ips: number };
}

interface Entry {
  failures: number;
  windowStart: number;
  lastFailureAt: number;
  lockedUntil: number;
  pending: number;
  pendingSince: number;
}

const ALLOWED: ThrottleDecision = Object.freeze({ allowed: true });
/** Eviction looks this far from the oldest end for an entry that is not locked. */
const EVICTION_SCAN = 32;
/** Longer keys are hashed so the key cap really bounds memory, whatever the caller passes. */
const MAX_KEY_LENGTH = 256;

function boundedKey(key: string): string {
  return key.length <= MAX_KEY_LENGTH ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Idempotent, so a caller that already lower-cased cannot get two budgets for one name. */
export function accountThrottleKey(account: string): string {
  return boundedKey(account.normalize('NFC').trim().toLowerCase());
}

function ipv6Groups(part: string): number[] {
  if (part === '') return [];
  const groups: number[] = [];
  for (const piece of part.split(':')) {
    if (piece.includes('.')) {
      const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number);
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(piece, 16));
    }
  }
  return groups;
}

/**
 * IPv4 as is; IPv4-mapped IPv6 as the IPv4 it carries; other IPv6 as its /64.
 * Text that is not an address is still throttled, under its own value.
 */
export function ipThrottleKey(ip: string): string {
  let addr = ip.trim().toLowerCase();
  if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1);
  const zone = addr.indexOf('%');
  if (zone >= 0) addr = addr.slice(0, zone);
  if (isIPv4(addr)) return addr;
  if (!isIPv6(addr)) return boundedKey(addr);
  const [head = '', tail] = addr.split('::');
  const h = ipv6Groups(head);
  const t = tail === undefined ? [] : ipv6Groups(tail);
  const g = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    const [hi = 0, lo = 0] = g.slice(6);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

function createCounter(rule: ThrottleRule, maxKeys: number, reservationTtlMs: number) {
  const entries = new Map<string, Entry>();

  const delayAfter = (failures: number) =>
    Math.min(rule.baseDelayMs * 2 ** (failures - rule.freeFailures), rule.maxDelayMs);

  /** The entry brought up to date at `now`; dropped once there is nothing left to remember. */
  function current(key: string, now: number): Entry | undefined {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.pending > 0 && now - e.pendingSince >= reservationTtlMs) e.pending = 0;
    if (e.failures > 0 && now - e.windowStart >= rule.windowMs) e.failures = 0;
    if (e.failures === 0 && e.pending === 0 && e.lockedUntil <= now) {
      entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Marks the entry most recently active (Map order is the eviction order), then enforces the cap. */
  function touch(key: string, e: Entry, now: number): void {
    entries.delete(key);
    entries.set(key, e);
    if (entries.size <= maxKeys) return;
    // Prefer an unlocked victim: otherwise flooding the table with throwaway
    // names would evict, and so lift, the lockout on the name under attack.
    let victim: string | undefined;
    let scanned = 0;
    for (const [k, other] of entries) {
      if (k === key || scanned++ >= EVICTION_SCAN) break;
      if (other.lockedUntil <= now) {
        victim = k;
        break;
      }
    }
    victim ??= entries.keys().next().value;
    if (victim !== undefined) entries.delete(victim);
  }

  function entryFor(key: string, now: number): Entry {
    return current(key, now) ?? { failures: 0, windowStart: now, lastFailureAt: 0, lockedUntil: 0, pending: 0, pendingSince: 0 };
  }

  return {
    decide(key: string, now: number): ThrottleDecision {
      const e = current(key, now);
      if (!e) return ALLOWED;
      if (e.lockedUntil > now) return { allowed: false, retryAfterMs: e.lockedUntil - now, reason: 'locked' };
      const inPlay = e.failures + e.pending;
      if (inPlay < rule.freeFailures) return ALLOWED;
      // Past the free failures only one attempt may be in flight; the hint is
      // the wait that will apply if the in-flight one fails.
      if (e.pending > 0) return { allowed: false, retryAfterMs: delayAfter(inPlay), reason: 'slow_down' };
      const wait = e.lastFailureAt + delayAfter(e.failures) - now;
      return wait > 0 ? { allowed: false, retryAfterMs: wait, reason: 'slow_down' } : ALLOWED;
    },
    reserve(key: string, now: number): void {
      const e = entryFor(key, now);
      e.pending++;
      e.pendingSince = now;
      touch(key, e, now);
    },
    fail(key: string, now: number): void {
      const e = entryFor(key, now);
      if (e.pending > 0) e.pending--;
      // A failure reported during a lockout (a request that was already in
      // flight) neither extends nor resets it.
      if (e.lockedUntil <= now) {
        if (e.failures === 0) e.windowStart = now;
        e.failures++;
        e.lastFailureAt = now;
        if (e.failures >= rule.lockAfterFailures) {
          e.lockedUntil = now + rule.lockoutMs;
          e.failures = 0;
        }
      }
      touch(key, e, now);
    },
    release(key: string, now: number): void {
      const e = current(key, now);
      if (!e || e.pending === 0) return;
      e.pending--;
      current(key, now);
    },
    forget(key: string): void {
      entries.delete(key);
    },
    size: () => entries.size,
  };
}

function validRule(name: string, rule: ThrottleRule): ThrottleRule {
  for (const [field, value] of Object.entries(rule)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`throttle ${name}.${field} must be a non-negative integer`);
  }
  if (rule.lockAfterFailures < 1 || rule.freeFailures > rule.lockAfterFailures) {
    throw new RangeError(`throttle ${name}: need 1 <= lockAfterFailures and freeFailures <= lockAfterFailures`);
  }
  return rule;
}

/** The deciding denial: a lockout outranks a slow-down; the caller must wait for the longest. */
function combine(a: ThrottleDecision, b: ThrottleDecision): ThrottleDecision {
  if (a.allowed) return b;
  if (b.allowed) return a;
  const reason = a.reason === 'locked' || b.reason === 'locked' ? 'locked' : 'slow_down';
  return { allowed: false, retryAfterMs: Math.max(a.retryAfterMs, b.retryAfterMs), reason };
}

export function createLoginThrottle(opts: LoginThrottleOptions = {}): LoginThrottle {
  const now = opts.now ?? Date.now;
  const d = DEFAULT_LOGIN_LIMITS;
  const maxKeys = opts.maxTrackedKeys ?? d.maxTrackedKeys;
  const ttl = opts.reservationTtlMs ?? d.reservationTtlMs;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError('throttle maxTrackedKeys must be a positive integer');
  if (!Number.isSafeInteger(ttl) || ttl < 1) throw new RangeError('throttle reservationTtlMs must be a positive integer');
  const accounts = createCounter(validRule('account', { ...d.account, ...opts.account }), maxKeys, ttl);
  const ips = createCounter(validRule('ip', { ...d.ip, ...opts.ip }), maxKeys, ttl);

  return {
    check(account, ip) {
      const t = now();
      const a = accountThrottleKey(account);
      const i = ipThrottleKey(ip);
      const decision = combine(accounts.decide(a, t), ips.decide(i, t));
      if (decision.allowed) {
        accounts.reserve(a, t);
        ips.reserve(i, t);
      }
      return decision;
    },
    recordFailure(account, ip) {
      const t = now();
      accounts.fail(accountThrottleKey(account), t);
      ips.fail(ipThrottleKey(ip), t);
    },
    recordSuccess(account, ip) {
      accounts.forget(accountThrottleKey(account));
      ips.release(ipThrottleKey(ip), now());
    },
    release(account, ip) {
      const t = now();
      accounts.release(accountThrottleKey(account), t);
      ips.release(ipThrottleKey(ip), t);
    },
    size: () => ({ accounts: accounts.size(), ips: ips.size() }),
  };
}
