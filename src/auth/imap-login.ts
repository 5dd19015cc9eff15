import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';

/**
 * Sign-in for mailbox owners with their mail credentials, checked by the mail server's IMAP
 * (Dovecot on iRedMail): connect, authenticate, log out. Nothing is cached or stored here.
 *
 * The result says why a sign-in failed, because the caller answers differently: a refused
 * password is the user's problem (401), an unreachable or misconfigured server is ours (503).
 * The password never appears in a result, an error or a thrown message.
 */

export type ImapSecurity = 'tls' | 'starttls' | 'none';

export interface ImapAuthenticatorOptions {
  host: string;
  port: number;
  /** `tls`: implicit TLS (993). `starttls`: 143, upgrade required. `none`: cleartext, loopback hosts only. */
  security: ImapSecurity;
  /** Verify the server certificate (default true). false accepts any certificate: test setups only. */
  rejectUnauthorized?: boolean;
  /**
   * PEM of a private CA (or of the self-signed certificate itself) to verify the server against.
   * As in Node's tls, it replaces the system roots for these connections; leave it unset for a
   * publicly trusted certificate (Let's Encrypt, as iRedMail sets up).
   */
  ca?: string | Buffer;
  /** Name to verify the certificate against (and send as SNI) when `host` is an IP address or differs. */
  servername?: string;
  /** Budget for the whole attempt: connect, TLS, greeting, login, logout. Default 10 000 ms. */
  timeoutMs?: number;
  /** Domains whose users may sign in (case-insensitive). Empty or absent: any domain. */
  allowedDomains?: readonly string[];
}

export type ImapLoginFailure = 'bad_credentials' | 'domain_not_allowed' | 'unavailable' | 'tls_error' | 'timeout';

export type ImapLoginResult =
  | { ok: true; address: string }
  | { ok: false; reason: ImapLoginFailure; detail: string };

export interface ImapLoginContext {
  /**
   * The end user's IP address, sent in the IMAP ID command as `x-originating-ip`. Dovecot honours
   * it only from `login_trusted_networks`; then its auth penalty (per-IP slow-down after failed
   * logins) and its logs apply to the user instead of to Spindle's own address.
   */
  clientIp?: string;
}

export interface ImapAuthenticator {
  authenticate(username: string, password: string, context?: ImapLoginContext): Promise<ImapLoginResult>;
}

export class ImapLoginConfigError extends Error {
  readonly code = 'bad_config';
}

export const DEFAULT_IMAP_TIMEOUT_MS = 10_000;
/** RFC 5321 path limit; longer is not an address. */
export const MAX_USERNAME_LENGTH = 320;
/** Same bound as local passwords: a sign-in request must not be a way to push megabytes at the server. */
export const MAX_PASSWORD_BYTES = 1024;
const MAX_DETAIL_LENGTH = 300;

/** Response codes (RFC 5530) that mean the server could not check, not that the password is wrong. */
const SERVER_TROUBLE_CODES = new Set(['UNAVAILABLE', 'SERVERBUG', 'LIMIT', 'INUSE', 'CONTACTADMIN']);
const TIMEOUT_CODES = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'ETIMEOUT', 'ETIMEDOUT']);

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/** Throws ImapLoginConfigError for settings that must never be used (also checked by restores, which connect the same way). */
export function checkOptions(opts: ImapAuthenticatorOptions): void {
  if (!opts.host) throw new ImapLoginConfigError('IMAP host is required');
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new ImapLoginConfigError(`IMAP port must be 1-65535, got ${opts.port}`);
  }
  if (!['tls', 'starttls', 'none'].includes(opts.security)) {
    throw new ImapLoginConfigError(`IMAP security must be tls, starttls or none, got ${String(opts.security)}`);
  }
  // Mail passwords in cleartext over a network are never acceptable; on loopback they never leave the host.
  if (opts.security === 'none' && !isLoopbackHost(opts.host)) {
    throw new ImapLoginConfigError(`IMAP security 'none' is only allowed for a loopback host, not ${opts.host}`);
  }
  if (opts.timeoutMs !== undefined && (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0)) {
    throw new ImapLoginConfigError(`IMAP timeout must be a positive number of milliseconds, got ${opts.timeoutMs}`);
  }
  for (const d of opts.allowedDomains ?? []) {
    if (!d || d.includes('@') || /\s/.test(d)) throw new ImapLoginConfigError(`not a domain in the IMAP allowed domains: ${d}`);
  }
}

type Checked = { ok: true; address: string } | { ok: false; reason: 'bad_credentials' | 'domain_not_allowed'; detail: string };

/** Everything that can be decided without the server. */
function checkInput(username: string, password: string, allowed: ReadonlySet<string>): Checked {
  const bad = (detail: string): Checked => ({ ok: false, reason: 'bad_credentials', detail });
  if (typeof username !== 'string' || typeof password !== 'string') return bad('username and password must be strings');
  const user = username.trim();
  if (user === '') return bad('username is empty');
  if (password === '') return bad('password is empty');
  if (user.length > MAX_USERNAME_LENGTH) return bad(`username is longer than ${MAX_USERNAME_LENGTH} characters`);
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return bad(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  // CR/LF would end the IMAP command line early; NUL separates SASL PLAIN fields.
  if (/[\x00-\x1f\x7f\s]/.test(user)) return bad('username contains whitespace or control characters');
  if (/[\r\n\0]/.test(password)) return bad('password contains CR, LF or NUL');
  const at = user.lastIndexOf('@');
  if (at <= 0 || at === user.length - 1 || user.indexOf('@') !== at) return bad('username must be a full address (user@domain)');
  const address = user.toLowerCase();
  const domain = address.slice(address.lastIndexOf('@') + 1); // lower-casing can change lengths
  if (allowed.size > 0 && !allowed.has(domain)) {
    return { ok: false, reason: 'domain_not_allowed', detail: `domain ${domain} may not sign in here` };
  }
  return { ok: true, address };
}

interface ImapErrorFields {
  code?: unknown;
  responseStatus?: unknown;
  serverResponseCode?: unknown;
  authenticationFailed?: unknown;
  tlsFailed?: unknown;
  response?: unknown;
  reason?: unknown;
  message?: unknown;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function isTlsError(code: string, e: ImapErrorFields): boolean {
  if (e.tlsFailed === true) return true; // imapflow marks failed STARTTLS upgrades
  if (code === 'ClosedAfterConnectTLS' || code === 'ClosedAfterConnectText') return false; // server hung up
  // Node's certificate codes (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, …), ERR_TLS_*, ERR_SSL_*,
  // and EPROTO (TLS spoken to a cleartext port or vice versa).
  return code === 'EPROTO' || /CERT|TLS|SSL|SIGNATURE|ISSUER/.test(code);
}

/** Maps whatever imapflow or the socket threw onto the caller's distinction. */
export function classifyImapError(err: unknown): { reason: Exclude<ImapLoginFailure, 'domain_not_allowed'>; detail: string } {
  const e: ImapErrorFields = typeof err === 'object' && err !== null ? (err as ImapErrorFields) : { message: String(err) };
  const code = str(e.code);
  const serverCode = str(e.serverResponseCode).toUpperCase();
  const text = str(e.response) || str(e.message) || 'unknown error';
  const withCode = (what: string) => `${what}${code ? ` (${code})` : ''}: ${text}`;

  if (e.responseStatus === 'NO' && e.authenticationFailed === true) {
    if (SERVER_TROUBLE_CODES.has(serverCode)) return { reason: 'unavailable', detail: `server could not check the password: ${text}` };
    if (serverCode === 'PRIVACYREQUIRED') return { reason: 'tls_error', detail: `server requires an encrypted connection: ${text}` };
    return { reason: 'bad_credentials', detail: `server refused the login: ${text}` };
  }
  if (e.responseStatus === 'BAD') return { reason: 'unavailable', detail: `server rejected the command: ${text}` };
  if (TIMEOUT_CODES.has(code)) return { reason: 'timeout', detail: withCode('timed out') };
  if (isTlsError(code, e)) return { reason: 'tls_error', detail: withCode('TLS failed') };
  const bye = str(e.reason);
  return { reason: 'unavailable', detail: withCode('IMAP server unavailable') + (bye ? ` (server said: ${bye})` : '') };
}

/** Last line of defence: no detail string may carry the password, whatever a server echoes. */
function scrub(detail: string, password: string): string {
  const clean = password ? detail.split(password).join('[redacted]') : detail;
  return clean.length > MAX_DETAIL_LENGTH ? `${clean.slice(0, MAX_DETAIL_LENGTH)}…` : clean;
}

export function createImapAuthenticator(opts: ImapAuthenticatorOptions): ImapAuthenticator {
  checkOptions(opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_IMAP_TIMEOUT_MS;
  const allowed = new Set((opts.allowedDomains ?? []).map((d) => d.toLowerCase()));
  const tls: ConnectionOptions = { rejectUnauthorized: opts.rejectUnauthorized ?? true };
  if (opts.ca !== undefined) tls.ca = opts.ca;

  async function attempt(address: string, password: string, context: ImapLoginContext): Promise<ImapLoginResult> {
    const clientOptions: ImapFlowOptions = {
      host: opts.host,
      port: opts.port,
      secure: opts.security === 'tls',
      // Required, not opportunistic: a stripped STARTTLS capability must fail, not fall back to cleartext.
      doSTARTTLS: opts.security === 'starttls' ? true : opts.security === 'none' ? false : undefined,
      servername: opts.servername,
      tls,
      auth: { user: address, pass: password },
      logger: false,
      disableAutoIdle: true,
      // connect() authenticates, runs NAMESPACE, logs out and resolves: nothing else is needed.
      verifyOnly: true,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      clientInfo: {
        name: 'spindle',
        version: false,
        vendor: false,
        'support-url': false,
        ...(context.clientIp ? { 'x-originating-ip': context.clientIp } : {}),
      },
    };
    const client = new ImapFlow(clientOptions);
    // Errors after connect() settled (a late socket error) would otherwise be an unhandled 'error' event.
    client.on('error', () => undefined);

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<ImapLoginResult>((resolve) => {
      timer = setTimeout(
        () => resolve({ ok: false, reason: 'timeout', detail: `no answer from ${opts.host}:${opts.port} within ${timeoutMs} ms` }),
        timeoutMs,
      );
    });
    const login = client.connect().then(
      (): ImapLoginResult => {
        // A PREAUTH greeting "authenticates" without looking at the password; initialOK is the
        // only place the greeting text is set, so a missing greeting means PREAUTH.
        if (typeof client.greeting !== 'string') {
          return { ok: false, reason: 'unavailable', detail: 'server greeted with PREAUTH: the password was never checked' };
        }
        return { ok: true, address };
      },
      (err: unknown): ImapLoginResult => ({ ok: false, ...classifyImapError(err) }),
    );
    try {
      return await Promise.race([login, deadline]);
    } finally {
      clearTimeout(timer);
      client.close(); // idempotent; after a timeout this is what drops the socket
    }
  }

  return {
    async authenticate(username, password, context = {}) {
      const checked = checkInput(username, password, allowed);
      if (!checked.ok) return checked;
      if (context.clientIp !== undefined && net.isIP(context.clientIp) === 0) {
        throw new TypeError('clientIp must be an IP address');
      }
      const result = await attempt(checked.address, password, context);
      return result.ok ? result : { ...result, detail: scrub(result.detail, password) };
    },
  };
}
