/**
 * Envelope recovery: who a journaled message was really for.
 *
 * Inputs are one SMTP delivery to Spindle (MAIL FROM, the RCPTs Spindle accepted) plus the
 * message's address headers. Header To/Cc/Bcc give participants of those kinds. In envelope
 * mode every decoded `journal+rcpt.` RCPT is an envelope recipient, and one that no To/Cc header
 * names is also a Bcc recipient (Postfix's cleanup drops the Bcc: header, so this is the only
 * place a Bcc recipient shows up). A message split by Postfix's recipient limit arrives as several
 * byte-identical deliveries with different RCPT sets; each is recovered on its own and the
 * results are merged by the caller (dedup).
 */
import type { Address } from '../ingest/types.js';
import { addressKey, splitAddress, type ArchiveAddressMatcher } from './archive-address.js';

export interface EnvelopeInput {
  /** SMTP MAIL FROM ('' / null for bounces). */
  mailFrom: string | null;
  /** Every RCPT TO Spindle accepted for this delivery, raw. */
  rcpts: Array<{ address: string; orcpt?: string | null }>;
  headers: { from: Address[]; sender: Address[]; to: Address[]; cc: Address[]; bcc: Address[] };
  /** Values of X-Original-To / X-Envelope-To, ONLY when the admin enabled trusting them. */
  trustedHeaderValues?: string[];
}

export type RecipientKind = 'to' | 'cc' | 'bcc' | 'envelope';

export interface Participant {
  address: string;
  name: string;
  kind: RecipientKind;
}

export interface RecoveredEnvelope {
  /**
   * 'envelope' when at least one RCPT was an encoded journal address (journal+rcpt, or
   * journal+from: a batch of a split delivery may hold only that one) or a trusted header named
   * a recipient; else 'always_bcc' (recipients come from To/Cc/Bcc headers only).
   */
  mode: 'always_bcc' | 'envelope';
  /** Decoded journal+from address if present, else MAIL FROM; null for the null sender `<>`. */
  envelopeSender: string | null;
  /** Deduplicated on (lower-cased address, kind), first occurrence wins. */
  recipients: Participant[];
}

const HEADER_KINDS = ['to', 'cc', 'bcc'] as const;

/**
 * Splits an address-list header value (`a@x, "B, C" <b@y>`) into bare addresses. Commas inside
 * quotes, angle brackets or comments do not split; `<...>` is preferred over the text around it.
 */
export function splitAddressList(value: string): string[] {
  const items: string[] = [];
  let cur = '';
  let inQuote = false;
  let angle = 0;
  let comment = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (inQuote) {
      cur += c;
      if (c === '\\' && i + 1 < value.length) cur += value[++i];
      else if (c === '"') inQuote = false;
      continue;
    }
    if (comment > 0) {
      if (c === '\\') i++;
      else if (c === '(') comment++;
      else if (c === ')') comment--;
      continue; // comments are dropped
    }
    if (c === '"') inQuote = true;
    else if (c === '(') {
      comment++;
      continue;
    } else if (c === '<') angle++;
    else if (c === '>') angle = Math.max(0, angle - 1);
    else if ((c === ',' || c === ';') && angle === 0) {
      items.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  items.push(cur);
  const out: string[] = [];
  for (const item of items) {
    let s = item.trim();
    const lt = s.lastIndexOf('<');
    const gt = s.lastIndexOf('>');
    if (lt !== -1 && gt > lt) s = s.slice(lt + 1, gt).trim();
    // Group syntax "name: a@x" → take what follows the colon when it is outside quotes.
    if (!s.startsWith('"')) {
      const colon = s.indexOf(':');
      if (colon !== -1 && colon < s.indexOf('@')) s = s.slice(colon + 1).trim();
    }
    if (s && splitAddress(s)) out.push(s);
  }
  return out;
}

function normalizeMailFrom(mailFrom: string | null): string | null {
  if (mailFrom === null) return null;
  let s = mailFrom.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  return s === '' ? null : s;
}

export function recoverEnvelope(
  input: EnvelopeInput,
  matcher: ArchiveAddressMatcher,
): RecoveredEnvelope {
  const recipients: Participant[] = [];
  const seen = new Set<string>();
  const add = (address: string, name: string, kind: RecipientKind) => {
    const k = `${addressKey(address)}\u0000${kind}`;
    if (seen.has(k)) return;
    seen.add(k);
    recipients.push({ address, name, kind });
  };

  // Header entries by canonical key: used for To/Cc membership and to give an envelope
  // recipient the same spelling and display name the header used. To/Cc/Bcc come before
  // From/Sender so a recipient's own header entry wins; within a header, the first non-empty
  // display name wins.
  const headerEntry = new Map<string, { address: string; name: string }>();
  const remember = (a: Address) => {
    const k = addressKey(a.address);
    const prev = headerEntry.get(k);
    if (!prev) headerEntry.set(k, { address: a.address, name: a.name });
    else if (!prev.name && a.name) prev.name = a.name;
  };
  const inToCc = new Set<string>();
  const h = input.headers;
  for (const kind of HEADER_KINDS) {
    for (const a of h[kind] ?? []) {
      if (!a || typeof a.address !== 'string' || !a.address.trim()) continue; // empty groups etc.
      const address = a.address.trim();
      add(address, a.name ?? '', kind);
      remember({ address, name: a.name ?? '' });
      if (kind !== 'bcc') inToCc.add(addressKey(address));
    }
  }
  for (const a of [...(h.from ?? []), ...(h.sender ?? [])]) {
    if (a && typeof a.address === 'string' && a.address.trim()) {
      remember({ address: a.address.trim(), name: a.name ?? '' });
    }
  }

  let envelopeMode = false;
  let journalFrom: string | null = null;
  const envelopeRcpts: string[] = [];

  for (const rcpt of input.rcpts) {
    // The decoded RCPT address is authoritative. ORCPT (Postfix sends the journal address itself,
    // xtext-encoded) is only corroboration and never adds or changes a recipient.
    const m = matcher.match(rcpt.address);
    if (!m || m.kind === 'plain') continue;
    envelopeMode = true;
    if (m.kind === 'rcpt') envelopeRcpts.push(m.original);
    else journalFrom ??= m.original;
  }

  for (const value of input.trustedHeaderValues ?? []) {
    for (const addr of splitAddressList(value)) {
      const m = matcher.match(addr);
      if (m) {
        // An archive address in a trusted header (e.g. X-Original-To of the journal copy
        // itself): decode it if it is an encoded recipient, otherwise it names no one.
        if (m.kind === 'rcpt') {
          envelopeRcpts.push(m.original);
          envelopeMode = true;
        }
        continue;
      }
      envelopeRcpts.push(addr);
      envelopeMode = true;
    }
  }

  for (const original of envelopeRcpts) {
    const k = addressKey(original);
    const entry = headerEntry.get(k);
    const address = entry?.address ?? original;
    const name = entry?.name ?? '';
    add(address, name, 'envelope');
    if (!inToCc.has(k)) add(address, name, 'bcc');
  }

  return {
    mode: envelopeMode ? 'envelope' : 'always_bcc',
    envelopeSender: journalFrom ?? normalizeMailFrom(input.mailFrom),
    recipients,
  };
}
