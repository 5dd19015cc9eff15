import type { UserInfo, UserStore } from '../db/users.js';
import type { ImapAuthenticator } from './imap-login.js';
import { dummyVerify, verifyPassword } from './password.js';
import type { LoginThrottle } from './throttle.js';
import { verifyTotp } from './totp.js';

export type SignInFailure =
  /** Wrong name, wrong password, disabled account, wrong TOTP code: one answer for all (no enumeration). */
  | 'bad_credentials'
  /** Password right, TOTP code missing: the client asks for it and signs in again. */
  | 'totp_required'
  | 'locked'
  | 'slow_down'
  /** The IMAP server could not be asked (down, TLS, timeout): not the user's fault, not counted. */
  | 'unavailable';

export type SignInResult =
  | { ok: true; user: UserInfo; method: 'local' | 'imap' }
  | {
      ok: false;
      code: SignInFailure;
      /** For the audit trail only, never for the client: why exactly it failed. */
      reason: string;
      retryAfterMs?: number;
    };

export interface SignInDeps {
  users: UserStore;
  throttle: LoginThrottle;
  /** null: IMAP sign-in is off. */
  imap: ImapAuthenticator | null;
  now?: () => number;
}

export interface SignIn {
  signIn(input: { username: string; password: string; totp?: string | undefined; ip: string }): Promise<SignInResult>;
}

/**
 * Local accounts check their scrypt hash; unknown names that look like addresses, and accounts
 * created that way, are checked against the mail server over IMAP (and get role user with their
 * address on first success). Every path costs about one password check, and unknown names get the
 * same answer as wrong passwords; the throttle counts both alike.
 */
export function createSignIn(deps: SignInDeps): SignIn {
  const now = deps.now ?? Date.now;
  return {
    async signIn({ username, password, totp, ip }) {
      const name = username.trim();
      const decision = deps.throttle.check(name, ip);
      if (!decision.allowed) return { ok: false, code: decision.reason, reason: decision.reason, retryAfterMs: decision.retryAfterMs };
      const fail = (reason: string): SignInResult => {
        deps.throttle.recordFailure(name, ip);
        return { ok: false, code: 'bad_credentials', reason };
      };

      let user = deps.users.get(name);
      let method: 'local' | 'imap';
      if (user?.source === 'local') {
        method = 'local';
        const hash = deps.users.secrets(user.id).passwordHash;
        const good = hash ? await verifyPassword(password, hash) : await dummyVerify(password);
        if (!good) return fail('wrong_password');
      } else if (deps.imap && (user?.source === 'imap' || (!user && name.includes('@')))) {
        method = 'imap';
        const r = await deps.imap.authenticate(name, password, { clientIp: ip });
        if (!r.ok) {
          if (r.reason === 'bad_credentials' || r.reason === 'domain_not_allowed') return fail(`imap_${r.reason}`);
          deps.throttle.release(name, ip);
          return { ok: false, code: 'unavailable', reason: `imap_${r.reason}: ${r.detail}` };
        }
        // First sign-in creates the account; later ones make sure its login address is still on it.
        user = user ?? deps.users.get(r.address) ?? deps.users.create({ name: r.address, source: 'imap', roles: ['user'], addresses: [r.address] });
        if (!user.addresses.includes(r.address)) user = deps.users.addAddresses(user.id, [r.address]);
      } else {
        await dummyVerify(password);
        return fail(user ? 'imap_disabled' : 'unknown_user');
      }
      if (user.disabled) return fail('disabled');

      const secrets = deps.users.secrets(user.id);
      if (secrets.totpSecret) {
        const code = (totp ?? '').replace(/\s+/g, '');
        if (!code) {
          deps.throttle.release(name, ip);
          return { ok: false, code: 'totp_required', reason: 'totp_required' };
        }
        const step = verifyTotp(secrets.totpSecret, code, { now: now(), ...(secrets.totpLastStep !== null ? { lastUsedStep: secrets.totpLastStep } : {}) });
        if (step === null) return fail('wrong_totp');
        deps.users.useTotpStep(user.id, step);
      }
      deps.throttle.recordSuccess(name, ip);
      deps.users.touchLogin(user.id);
      return { ok: true, user, method };
    },
  };
}
