/**
 * Which RCPT addresses Spindle accepts, and what they mean.
 *
 * Postfix reaches Spindle in one of two ways (see docs/postfix.md):
 *  - always_bcc: the only RCPT is a configured archive address (kind 'plain');
 *  - envelope mode: sender_bcc_maps / recipient_bcc_maps encode every envelope address into
 *    `journal+rcpt.LOCAL=DOMAIN@archive-domain` / `journal+from.LOCAL=DOMAIN@archive-domain`.
 *
 * What Postfix really puts on the wire (checked against Postfix 3.7):
 *  - the regexp map sees the address in external form, so `"john doe"@example.com` becomes
 *    `<"journal+rcpt.\"john doe\"=example.com"@archive.example>`: the original local part keeps
 *    its own quotes inside the (quoted) encoded local part;
 *  - case is kept as given (`journal+rcpt.Alice=Example.COM@...`);
 *  - every journal RCPT carries `ORCPT=rfc822;<the journal address, xtext>` and `NOTIFY=NEVER`.
 */

export type ArchiveRcpt =
  | { kind: 'plain' } // an archive address itself (always_bcc mode)
  | { kind: 'rcpt'; original: string } // journal+rcpt.LOCAL=DOMAIN@archive-domain → LOCAL@DOMAIN
  | { kind: 'from'; original: string }; // journal+from.LOCAL=DOMAIN@archive-domain

export interface ArchiveAddressMatcher {
  match(address: string): ArchiveRcpt | null;
  /** Lower-cased domains of all configured entries, without duplicates, in configuration order. */
  domains: string[];
}

const RCPT_PREFIX = 'journal+rcpt.';
const FROM_PREFIX = 'journal+from.';

/** Characters allowed unquoted in a local part (RFC 5322 atext plus '.', RFC 6532 UTF-8). */
const UNQUOTED_LOCAL = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\u0080-\u{10FFFF}]+$/u;

interface SplitAddress {
  /** Local part with any surrounding quotes removed and quoted-pairs resolved. */
  local: string;
  domain: string;
}

/**
 * Splits `local@domain` (optionally in `<...>`), unquoting a quoted local part.
 * Returns null when there is no usable `@`, or a quoted local part is malformed.
 */
export function splitAddress(input: string): SplitAddress | null {
  let s = input.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  if (s.startsWith('"')) {
    let local = '';
    let i = 1;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\') {
        if (i + 1 >= s.length) return null;
        local += s[++i];
      } else if (c === '"') {
        break;
      } else {
        local += c;
      }
    }
    if (i >= s.length || s[i + 1] !== '@') return null; // unterminated, or text between quote and '@'
    const domain = s.slice(i + 2);
    if (!local || !domain || domain.includes('@')) return null;
    return { local, domain };
  }
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return null;
  return { local: s.slice(0, at), domain: s.slice(at + 1) };
}

/** True when `s` is one complete RFC 5321 quoted-string (`"..."` with `\` escapes). */
function isQuotedString(s: string): boolean {
  if (s.length < 2 || !s.startsWith('"') || !s.endsWith('"')) return false;
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      if (i >= s.length - 1) return false;
    } else if (c === '"') {
      return false;
    }
  }
  return true;
}

/** Formats a local part for use in an address: as is when it needs no quoting, else quoted. */
export function formatLocalPart(local: string): string {
  if (UNQUOTED_LOCAL.test(local) || isQuotedString(local)) return local;
  return `"${local.replace(/(["\\])/g, '\\$1')}"`;
}

/** Undoes the quoting of a local part, if it is one quoted-string; otherwise returns it unchanged. */
function unquoteLocalPart(local: string): string {
  if (!isQuotedString(local)) return local;
  return local.slice(1, -1).replace(/\\(.)/gu, '$1');
}

/**
 * Canonical comparison key for an address: local part unquoted, everything lower-cased.
 * `"Bob"@Example.COM`, `bob@example.com` and `<BOB@example.com>` share one key.
 */
export function addressKey(address: string): string {
  const parts = splitAddress(address);
  if (!parts) return address.trim().toLowerCase();
  return `${unquoteLocalPart(parts.local)}@${parts.domain}`.toLowerCase();
}

function normalizeDomain(domain: string): string {
  let d = domain.trim().toLowerCase();
  if (d.endsWith('.')) d = d.slice(0, -1);
  return d;
}

/**
 * Decodes RFC 3461 xtext: `+XX` is the octet with hex value XX, any other character must be
 * printable ASCII other than `+` and `=`. Decoded octets are read as UTF-8 when they form valid
 * UTF-8, else as Latin-1. Lower-case hex digits are accepted. Throws on anything else.
 */
export function decodeXtext(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b /* + */) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        throw new Error(`invalid xtext: "+" not followed by two hex digits at offset ${i}`);
      }
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x3d /* = */) {
      throw new Error(`invalid xtext: character ${JSON.stringify(s[i])} at offset ${i}`);
    } else {
      bytes.push(c);
    }
  }
  const buf = Buffer.from(bytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return buf.toString('latin1');
  }
}

/** RFC 6533 utf-8-addr-xtext / utf-8-addr-unitext: `\x{HEX}` escapes, everything else literal. */
function decodeUtf8AddrText(s: string): string {
  return s.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (_m, hex: string) => {
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff) throw new Error('invalid utf-8-addr escape');
    return String.fromCodePoint(cp);
  });
}

/**
 * Parses a DSN ORCPT value (`addr-type;xtext`) into the original recipient address.
 * `rfc822;user+2Bx@example.com` → `user+x@example.com`; the `utf-8` type (RFC 6533) is decoded
 * too; any other address type, or an empty address, → null.
 *
 * smtp-server 3.x already xtext-decodes RCPT parameter values, so a value that is not valid
 * xtext (e.g. `rfc822;user+x@example.com`) is taken as already decoded rather than rejected.
 * Never throws.
 */
export function parseOrcpt(value: string): string | null {
  const v = value.trim();
  const semi = v.indexOf(';');
  if (semi <= 0) return null;
  const type = v.slice(0, semi).trim().toLowerCase();
  const raw = v.slice(semi + 1).trim();
  let addr: string;
  if (type === 'rfc822') {
    try {
      addr = decodeXtext(raw);
    } catch {
      addr = raw;
    }
  } else if (type === 'utf-8') {
    try {
      addr = decodeUtf8AddrText(raw);
    } catch {
      return null;
    }
  } else {
    return null;
  }
  addr = addr.trim();
  if (addr.startsWith('<') && addr.endsWith('>')) addr = addr.slice(1, -1).trim();
  return addr || null;
}

/**
 * Builds the journal address Postfix's regexp map produces for `original` (the inverse of
 * decoding), in the form it has on the wire: quoted when the encoded local part needs it.
 * Throws when `original` is not `local@domain`.
 */
export function encodeJournalAddress(
  kind: 'rcpt' | 'from',
  original: string,
  archiveDomain: string,
): string {
  let s = original.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  // Like Postfix's /^(.+)@(.+)$/: local part is everything before the LAST '@'.
  const at = s.lastIndexOf('@');
  const domain = normalizeDomain(archiveDomain);
  if (at <= 0 || at === s.length - 1 || !domain) {
    throw new Error(`cannot encode ${JSON.stringify(original)}: expected local@domain`);
  }
  const local = `journal+${kind}.${s.slice(0, at)}=${s.slice(at + 1)}`;
  return `${formatLocalPart(local)}@${domain}`;
}

/** Decodes the part after `journal+rcpt.` / `journal+from.`: split at the LAST '='. */
function decodeJournalRest(rest: string): string | null {
  const eq = rest.lastIndexOf('=');
  if (eq <= 0) return null;
  const local = rest.slice(0, eq);
  const domain = rest.slice(eq + 1).toLowerCase();
  if (!domain || /[\s@"<>\\,;]/.test(domain)) return null;
  if (!local.trim()) return null;
  return `${formatLocalPart(local)}@${domain}`;
}

/**
 * Builds a matcher from configured entries: addresses (`archive@localhost`) or whole domains
 * (`@archive.example`), case-insensitive. Throws on an entry that is neither.
 */
export function createArchiveAddressMatcher(entries: string[]): ArchiveAddressMatcher {
  const exact = new Set<string>();
  const catchAllDomains = new Set<string>();
  const allDomains: string[] = [];
  const addDomain = (d: string) => {
    if (!allDomains.includes(d)) allDomains.push(d);
  };
  for (const raw of entries) {
    const entry = raw.trim();
    if (!entry) continue;
    if (entry.startsWith('@')) {
      const d = normalizeDomain(entry.slice(1));
      if (!d || d.includes('@') || /\s/.test(d)) {
        throw new Error(`invalid archive address entry ${JSON.stringify(raw)}`);
      }
      catchAllDomains.add(d);
      addDomain(d);
      continue;
    }
    const parts = splitAddress(entry);
    if (!parts) {
      throw new Error(
        `invalid archive address entry ${JSON.stringify(raw)}: expected local@domain or @domain`,
      );
    }
    const d = normalizeDomain(parts.domain);
    exact.add(`${parts.local}@${d}`.toLowerCase());
    addDomain(d);
  }
  const domainSet = new Set(allDomains);

  function match(address: string): ArchiveRcpt | null {
    const parts = splitAddress(address);
    if (!parts) return null;
    const domain = normalizeDomain(parts.domain);
    if (!domainSet.has(domain)) return null;
    const local = parts.local;
    if (exact.has(`${local}@${domain}`.toLowerCase())) return { kind: 'plain' };
    const lower = local.slice(0, RCPT_PREFIX.length).toLowerCase();
    if (lower === RCPT_PREFIX || lower === FROM_PREFIX) {
      const original = decodeJournalRest(local.slice(RCPT_PREFIX.length));
      if (original === null) return null;
      return lower === RCPT_PREFIX ? { kind: 'rcpt', original } : { kind: 'from', original };
    }
    if (catchAllDomains.has(domain)) return { kind: 'plain' };
    return null;
  }

  return { match, domains: allDomains };
}
