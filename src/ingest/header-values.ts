/** Header value decoding shared by the mailparser path and the fallback scan: Message-IDs, dates, addresses, selected headers. */
import libmime from 'libmime';
import { parseAddressHeader } from 'mailparser';
import type { AddressObject, EmailAddress, HeaderValue } from 'mailparser';
import type { Address } from './types.js';

export function decodeWordsSafe(s: string): string {
  if (s.indexOf('=?') < 0) return s;
  try {
    return libmime.decodeWords(s);
  } catch {
    return s;
  }
}

/**
 * Value of a folded header line `Name: value` (as mailsplit gives it: bytes as latin1 code units),
 * unfolded and trimmed, 8-bit bytes read as UTF-8 (as mailparser does). Encoded words are kept.
 */
export function rawHeaderValue(line: string): string {
  const colon = line.indexOf(':');
  const v = (colon < 0 ? '' : line.slice(colon + 1)).replace(/\r?\n[ \t]*|\r[ \t]*/g, ' ').trim();
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(v) ? Buffer.from(v, 'latin1').toString('utf8') : v;
}

/** Message-IDs cannot contain whitespace: folding inside one is removed. */
function cleanId(id: string): string {
  return id.replace(/\s+/g, '');
}

/** The first `<id>` in a Message-ID / In-Reply-To value, without brackets; a bare token otherwise. */
export function firstMessageId(value: string | undefined): string | null {
  if (!value) return null;
  const m = /<([^<>]*)>/.exec(value);
  if (m && m[1] && cleanId(m[1])) return cleanId(m[1]);
  const token = value.replace(/\([^()]*\)/g, ' ').replace(/[<>]/g, ' ').trim().split(/[\s,]+/)[0];
  return token ? token : null;
}

/** Every `<id>` of a References value, without brackets, in order; bare tokens when there are none. */
export function allMessageIds(value: string | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const m of value.matchAll(/<([^<>]*)>/g)) {
    const id = cleanId(m[1] ?? '');
    if (id) out.push(id);
  }
  if (out.length > 0) return out;
  return value
    .replace(/\([^()]*\)/g, ' ')
    .replace(/[<>]/g, ' ')
    .split(/[\s,]+/)
    .filter((t) => t.length > 0);
}

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};
const ZONES: Record<string, number> = {
  ut: 0, utc: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420,
};
const RFC5322_DATE =
  /^\s*(?:[A-Za-z]+\s*,?\s*)?(\d{1,2})[\s-]+([A-Za-z]{3})[A-Za-z]*\.?[\s-]+(\d{2,4})\s+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?\s*(?:([+-])(\d{2}):?(\d{2})|([A-Za-z]{1,5})\b)?/;
const MIN_TIME = Date.UTC(1900, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);

/**
 * Parses a Date header value to an ISO string, or null. RFC 5322 (and its obsolete forms: 2-digit
 * years, named zones; a missing zone counts as UTC) first; otherwise Date.parse, but only for
 * values that carry a 4-digit year (Date.parse accepts '1' as a date). Impossible calendar
 * dates (31 Feb) and instants before 1900 or after 9999 are rejected.
 */
export function parseDateHeader(value: string | undefined): string | null {
  if (!value) return null;
  const v = value.trim();
  if (!v) return null;
  const m = RFC5322_DATE.exec(v);
  let t: number;
  if (m) {
    const day = Number(m[1]);
    const month = MONTHS[(m[2] ?? '').toLowerCase()];
    let year = Number(m[3]);
    const yLen = (m[3] ?? '').length;
    if (yLen === 2) year += year < 50 ? 2000 : 1900;
    else if (yLen === 3) year += 1900;
    const hour = Number(m[4]);
    const minute = Number(m[5]);
    const second = m[6] === undefined ? 0 : Number(m[6]);
    if (month === undefined || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
    let offsetMin = 0;
    if (m[7]) {
      const oh = Number(m[8]);
      const om = Number(m[9]);
      if (oh > 23 || om > 59) return null;
      offsetMin = (m[7] === '-' ? -1 : 1) * (oh * 60 + om);
    } else if (m[10]) {
      offsetMin = ZONES[m[10].toLowerCase()] ?? 0;
    }
    const local = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
    if (new Date(local).getUTCDate() !== day) return null; // 31 Feb and the like
    t = local - offsetMin * 60_000;
  } else {
    if (!/\d{4}/.test(v)) return null;
    t = Date.parse(v);
  }
  if (!Number.isFinite(t) || t < MIN_TIME || t > MAX_TIME) return null;
  return new Date(t).toISOString();
}

function lowerDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at + 1) + address.slice(at + 1).toLowerCase();
}

function pushAddresses(list: EmailAddress[] | undefined, out: Address[], depth = 0): void {
  if (!list || depth > 8) return;
  for (const a of list) {
    if (!a) continue;
    if (Array.isArray(a.group)) {
      pushAddresses(a.group, out, depth + 1);
      continue;
    }
    const address = typeof a.address === 'string' ? a.address.trim() : '';
    if (!/[^@\s]/.test(address)) continue; // '' or a bare '@'
    out.push({ address: lowerDomain(address), name: typeof a.name === 'string' ? a.name.trim() : '' });
  }
}

function isAddressObject(v: unknown): v is AddressObject {
  return typeof v === 'object' && v !== null && Array.isArray((v as AddressObject).value);
}

/** Flattened mailboxes of a parsed address header (one AddressObject or an array of them). */
export function addressesOf(value: HeaderValue | undefined): Address[] {
  const out: Address[] = [];
  if (value === undefined) return out;
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  for (const v of list) if (isAddressObject(v)) pushAddresses(v.value, out);
  return out;
}

export function addressesFromRaw(values: string[]): Address[] {
  if (values.length === 0) return [];
  try {
    const out: Address[] = [];
    pushAddresses(parseAddressHeader(values, { flatten: true }).value, out);
    return out;
  } catch {
    return [];
  }
}

export function selectHeaders(names: string[], lines: ReadonlyArray<{ key: string; line: string }>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (names.length === 0) return out;
  for (const n of names) out[n.toLowerCase()] = [];
  for (const { key, line } of lines) {
    const bucket = out[key];
    if (bucket) bucket.push(decodeWordsSafe(rawHeaderValue(line)));
  }
  return out;
}
