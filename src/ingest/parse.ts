import { createHash } from 'node:crypto';
import libmime from 'libmime';
import { MailParser, parseAddressHeader } from 'mailparser';
import type { AddressObject, AttachmentStream, EmailAddress, Headers, HeaderValue, MessageText } from 'mailparser';
import type { Address, AttachmentInfo, ParsedMail } from './types.js';

/**
 * Defect codes (stable, kebab-case; stored with the message and counted in metrics):
 *
 * - `parse-error`            mailparser failed on the message; the result comes from the fallback scan.
 * - `no-header-block`        the input does not start with a header field (empty input, plain text,
 *                            a leading blank line); the result comes from the fallback scan.
 * - `parse-timeout`          (pool) parsing took longer than the pool's timeout; fallback scan.
 * - `parse-crash`            (pool) the worker parsing the message died; fallback scan.
 * - `missing-final-boundary` a multipart's closing delimiter `--boundary--` never appears.
 * - `missing-boundary`       a multipart part declares no boundary parameter.
 * - `html-to-text-failed`    mailparser could not turn the HTML into text; tags were stripped instead.
 * - `no-from`                no usable address in From.
 * - `no-date`                no Date header.
 * - `bad-date`               a Date header that does not parse to a plausible instant.
 * - `no-message-id`          no usable Message-ID.
 *
 * `status` is 'ok' when mailparser produced the result and 'partial' when only the fallback scan did.
 */
export const DEFECT_CODES = [
  'parse-error',
  'no-header-block',
  'parse-timeout',
  'parse-crash',
  'missing-final-boundary',
  'missing-boundary',
  'html-to-text-failed',
  'no-from',
  'no-date',
  'bad-date',
  'no-message-id',
] as const;
export type DefectCode = (typeof DEFECT_CODES)[number];

export interface ParseOptions {
  /** Raw headers to return by (lower-case) name in `headers`, e.g. ['x-original-to']. */
  headerNames: string[];
  /** `text` is cut to at most this many UTF-16 code units. */
  maxTextChars: number;
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');

// html-to-text is a dependency of mailparser (used by it for HTML-only mail) and ships no types.
// It is loaded optionally: without it the tag stripper below does the job.
type HtmlToText = (html: string, options?: Record<string, unknown>) => string;
let htmlToTextFn: HtmlToText | null = null;
try {
  const spec = 'html-to-text';
  const mod = (await import(spec)) as { htmlToText?: HtmlToText };
  if (typeof mod.htmlToText === 'function') htmlToTextFn = mod.htmlToText;
} catch {
  htmlToTextFn = null;
}

/** HTML longer than this (in chars) is not given to html-to-text (slow on huge input); tags are stripped. */
const MAX_HTML_TO_TEXT = 512 * 1024;
/** At most this many bytes of a header block are looked at by the fallback scan. */
const MAX_SCAN_HEADER_BYTES = 1024 * 1024;

// Options that skip work we do not need: we only index text, never render HTML.
//  - skipTextToHtml / skipTextLinks: no textAsHtml, no linkify pass over the text.
//  - skipImageLinks: no cid: -> data: URL rewriting.
//  - checksumAlgo 'sha256': the attachment hash we store, computed while streaming (no buffering).
// We drive MailParser directly rather than simpleParser: simpleParser buffers every attachment in
// memory (we only need size and hash) and its extra glue cost 10-35% on 5 KB mail in our
// measurements (see the throughput test in parse-pool.test.ts); it also gives us the MIME tree
// for the boundary check.
function mailParserOptions() {
  return {
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
    checksumAlgo: 'sha256',
    maxHtmlLengthToParse: MAX_HTML_TO_TEXT,
  } as const;
}

// ---------------------------------------------------------------------------------------------
// Raw byte helpers

function asBuffer(raw: Uint8Array): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/**
 * Offset of the first byte after the header block: after the first CRLFCRLF or LFLF (an empty line),
 * or after a blank first line (an empty header block). -1 when there is no empty line at all.
 */
export function findBodyStart(buf: Buffer): number {
  if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  if (buf.length >= 1 && buf[0] === 0x0a) return 1;
  let i = buf.indexOf(0x0a);
  while (i >= 0 && i + 1 < buf.length) {
    const next = buf[i + 1];
    if (next === 0x0a) return i + 2;
    if (next === 0x0d && buf[i + 2] === 0x0a) return i + 3;
    i = buf.indexOf(0x0a, i + 1);
  }
  return -1;
}

function sha256Hex(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** sha256 of the raw bytes after the header block (of empty input when there is no empty line). */
export function bodySha256(raw: Uint8Array): string {
  const buf = asBuffer(raw);
  const start = findBodyStart(buf);
  return start < 0 ? EMPTY_SHA256 : sha256Hex(buf.subarray(start));
}

const HEADER_FIELD = /^[ \t]*[!-9;-~]+[ \t]*:/;

/** End offset (exclusive, without the line break) of the line starting at `from`. */
function lineEnd(buf: Buffer, from: number): number {
  const nl = buf.indexOf(0x0a, from);
  let end = nl < 0 ? buf.length : nl;
  if (end > from && buf[end - 1] === 0x0d) end--;
  return end;
}

/**
 * Whether the input starts with a header field (`Name:`), allowing leading blanks and an mbox
 * `From ` line in front of it (mailparser tolerates both).
 */
export function hasHeaderBlock(buf: Buffer): boolean {
  if (buf.length === 0) return false;
  let start = 0;
  let end = lineEnd(buf, 0);
  if (buf.toString('latin1', 0, Math.min(end, 5)) === 'From ') {
    start = buf.indexOf(0x0a) + 1;
    if (start <= 0) return false;
    end = lineEnd(buf, start);
  }
  return HEADER_FIELD.test(buf.toString('latin1', start, Math.min(end, start + 1000)));
}

// ---------------------------------------------------------------------------------------------
// Text helpers

function capText(s: string, max: number): string {
  if (max <= 0) return '';
  if (s.length <= max) return s;
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return s.slice(0, end);
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', shy: '', copy: '\u00a9', reg: '\u00ae',
  trade: '\u2122', hellip: '\u2026', mdash: '\u2014', ndash: '\u2013', lsquo: '\u2018', rsquo: '\u2019',
  ldquo: '\u201c', rdquo: '\u201d', bull: '\u2022', middot: '\u00b7', euro: '\u20ac', pound: '\u00a3',
  laquo: '\u00ab', raquo: '\u00bb', zwnj: '\u200c', zwj: '\u200d',
};

function decodeEntities(s: string): string {
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,31});/g, (m, ent: string) => {
    if (ent[0] === '#') {
      const cp = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(cp);
    }
    return NAMED_ENTITIES[ent.toLowerCase()] ?? m;
  });
}

/**
 * Small HTML-to-text for when html-to-text is unavailable, failed, or the HTML is huge (tag
 * patterns stop at the next '<', so unclosed tags cannot make it quadratic):
 * drops comments, <head>, <script>, <style>; turns block-level tags and <br> into line breaks;
 * removes other tags; decodes common entities; collapses runs of blanks.
 */
export function stripHtml(html: string): string {
  let s = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, ' ')
    .replace(/<(script|style|head|title|template)\b[^<>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ' ')
    .replace(/<\/?(?:p|div|br|hr|li|ul|ol|tr|table|h[1-6]|blockquote|pre|section|article|header|footer|dd|dt)\b[^<>]*>/gi, '\n')
    .replace(/<\/?(?:td|th)\b[^<>]*>/gi, ' ')
    .replace(/<\/?[a-zA-Z!?][^<>]*>/g, '');
  s = decodeEntities(s);
  return s
    .replace(/[ \t\r\f\v\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function htmlToPlain(html: string): { text: string; failed: boolean } {
  if (htmlToTextFn && html.length <= MAX_HTML_TO_TEXT) {
    try {
      return { text: htmlToTextFn(html, { wordwrap: false, limits: { maxDepth: 1000 } }), failed: false };
    } catch {
      return { text: stripHtml(html), failed: true };
    }
  }
  return { text: stripHtml(html), failed: false };
}

// ---------------------------------------------------------------------------------------------
// Header helpers (shared by the mailparser path and the fallback scan)

function decodeWordsSafe(s: string): string {
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
function rawHeaderValue(line: string): string {
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
function addressesOf(value: HeaderValue | undefined): Address[] {
  const out: Address[] = [];
  if (value === undefined) return out;
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  for (const v of list) if (isAddressObject(v)) pushAddresses(v.value, out);
  return out;
}

function addressesFromRaw(values: string[]): Address[] {
  if (values.length === 0) return [];
  try {
    const out: Address[] = [];
    pushAddresses(parseAddressHeader(values, { flatten: true }).value, out);
    return out;
  } catch {
    return [];
  }
}

function finishDefects(defects: string[], mail: Pick<ParsedMail, 'from' | 'messageId' | 'date'>, hasDateHeader: boolean): string[] {
  if (mail.from.length === 0) defects.push('no-from');
  if (!hasDateHeader) defects.push('no-date');
  else if (mail.date === null) defects.push('bad-date');
  if (mail.messageId === null) defects.push('no-message-id');
  return [...new Set(defects)];
}

function selectHeaders(names: string[], lines: ReadonlyArray<{ key: string; line: string }>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (names.length === 0) return out;
  for (const n of names) out[n.toLowerCase()] = [];
  for (const { key, line } of lines) {
    const bucket = out[key];
    if (bucket) bucket.push(decodeWordsSafe(rawHeaderValue(line)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fallback scan

/**
 * Cheap scan used when mailparser cannot be used (it threw, the input has no header block, or —
 * in the pool — parsing timed out or crashed the worker). Never throws. Unfolds the header block,
 * decodes RFC 2047 words, takes Subject/From/To/Cc/Bcc/Sender/Reply-To/Message-ID/In-Reply-To/
 * References/Date and the selected headers, and uses the raw bytes after the header block, as
 * UTF-8 with replacement, as `text`. status 'partial'; `defects` come first in the result.
 */
export function fallbackParse(raw: Uint8Array, opts: ParseOptions, defects: string[]): ParsedMail {
  let buf: Buffer;
  try {
    buf = asBuffer(raw);
  } catch {
    buf = Buffer.alloc(0);
  }
  let sha = EMPTY_SHA256;
  try {
    sha = bodySha256(buf);
  } catch {
    // keep the empty hash
  }
  const result: ParsedMail = {
    messageId: null,
    subject: '',
    date: null,
    from: [],
    sender: [],
    to: [],
    cc: [],
    bcc: [],
    replyTo: [],
    inReplyTo: null,
    references: [],
    text: '',
    attachments: [],
    bodySha256: sha,
    headers: {},
    defects: [...defects],
    status: 'partial',
  };
  try {
    for (const n of opts.headerNames) result.headers[n.toLowerCase()] = [];
    const headerBlock = hasHeaderBlock(buf);
    const bodyStart = findBodyStart(buf);
    const fields: { key: string; line: string }[] = [];
    let textStart = 0;
    if (headerBlock) {
      const headerEnd = Math.min(bodyStart < 0 ? buf.length : bodyStart, MAX_SCAN_HEADER_BYTES);
      textStart = bodyStart < 0 ? buf.length : bodyStart;
      const lines = buf.toString('latin1', 0, headerEnd).split(/\r?\n/);
      for (const line of lines) {
        if (line === '' || line === '\r') continue;
        const last = fields[fields.length - 1];
        if ((line[0] === ' ' || line[0] === '\t') && last) {
          last.line += '\r\n' + line;
          continue;
        }
        const colon = line.indexOf(':');
        if (colon <= 0) continue; // mbox From_ line or garbage
        const key = line.slice(0, colon).trim().toLowerCase();
        if (!key || /\s/.test(key)) continue;
        fields.push({ key, line });
      }
    }
    const all = (key: string): string[] => fields.filter((f) => f.key === key).map((f) => rawHeaderValue(f.line));
    const first = (key: string): string | undefined => {
      const f = fields.find((x) => x.key === key);
      return f ? rawHeaderValue(f.line) : undefined;
    };
    result.subject = decodeWordsSafe(first('subject') ?? '');
    result.from = addressesFromRaw(all('from').slice(0, 1));
    result.sender = addressesFromRaw(all('sender').slice(0, 1));
    result.to = addressesFromRaw(all('to'));
    result.cc = addressesFromRaw(all('cc'));
    result.bcc = addressesFromRaw(all('bcc'));
    result.replyTo = addressesFromRaw(all('reply-to').slice(0, 1));
    result.messageId = firstMessageId(first('message-id'));
    result.inReplyTo = firstMessageId(first('in-reply-to'));
    result.references = all('references').flatMap((v) => allMessageIds(v));
    const dateValue = first('date');
    result.date = parseDateHeader(dateValue);
    if (opts.headerNames.length > 0) result.headers = selectHeaders(opts.headerNames, fields);
    const max = Math.max(0, opts.maxTextChars);
    const slice = buf.subarray(textStart, Math.min(buf.length, textStart + max * 4));
    result.text = capText(slice.toString('utf8'), max);
    result.defects = finishDefects(result.defects, result, dateValue !== undefined);
  } catch {
    if (!result.defects.includes('parse-error')) result.defects.push('parse-error');
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// mailparser path

interface MailParserOutcome {
  headers: Headers;
  headerLines: ReadonlyArray<{ key: string; line: string }>;
  text: string;
  html: string;
  textConversionError: boolean;
  attachments: AttachmentInfo[];
  /** Boundaries of every multipart in the tree; null for a multipart with no boundary. */
  boundaries: (Buffer | null)[];
}

/** The bits of MailParser's internal tree we read (not part of its typed API; read defensively). */
interface TreeNode {
  contentType?: unknown;
  headers?: unknown;
  children?: unknown;
  node?: { _boundary?: unknown };
}

function collectBoundaries(tree: unknown, rootHeaders: Headers): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  const walk = (n: TreeNode, depth: number): void => {
    if (!n || typeof n !== 'object' || depth > 64) return;
    if (typeof n.contentType === 'string' && /^multipart\//i.test(n.contentType)) {
      const b = n.node?._boundary;
      if (Buffer.isBuffer(b) && b.length > 0) out.push(b);
      else {
        const ct = n.headers instanceof Map ? (n.headers.get('content-type') as { params?: Record<string, string> } | undefined) : undefined;
        const p = ct?.params?.boundary;
        out.push(p ? Buffer.from(p, 'latin1') : null);
      }
    }
    if (Array.isArray(n.children)) for (const c of n.children) walk(c as TreeNode, depth + 1);
  };
  if (tree && typeof tree === 'object') {
    walk(tree as TreeNode, 0);
    return out;
  }
  // No tree (a future mailparser): check the top-level multipart only.
  const ct = rootHeaders.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  if (ct && typeof ct.value === 'string' && /^multipart\//i.test(ct.value)) {
    out.push(ct.params?.boundary ? Buffer.from(ct.params.boundary, 'latin1') : null);
  }
  return out;
}

/** Whether `--boundary--` appears at the start of a line. */
function hasClosingDelimiter(buf: Buffer, boundary: Buffer): boolean {
  const needle = Buffer.concat([Buffer.from('--'), boundary, Buffer.from('--')]);
  let i = buf.indexOf(needle);
  while (i >= 0) {
    if (i === 0 || buf[i - 1] === 0x0a) return true;
    i = buf.indexOf(needle, i + 1);
  }
  return false;
}

function runMailParser(buf: Buffer): Promise<MailParserOutcome> {
  return new Promise<MailParserOutcome>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const parser = new MailParser(mailParserOptions());
    let headers: Headers = new Map();
    let text = '';
    let html = '';
    let textConversionError = false;
    const attachments: AttachmentInfo[] = [];
    parser.on('headers', (h: Headers) => {
      headers = h;
    });
    parser.on('error', fail);
    parser.on('data', (data: AttachmentStream | MessageText) => {
      try {
        if (data.type === 'text') {
          text = typeof data.text === 'string' ? data.text : '';
          html = typeof data.html === 'string' ? data.html : '';
          textConversionError = !!data.textConversionError;
          return;
        }
        const att = data;
        att.content.on('error', fail);
        att.content.on('data', () => {
          // drained: size and sha256 are computed by mailparser's hashing stream
        });
        att.content.on('end', () => {
          attachments.push({
            filename: att.filename ? att.filename : null,
            contentType: (att.contentType || 'application/octet-stream').toLowerCase(),
            size: att.size ?? 0,
            sha256: att.checksum ?? EMPTY_SHA256,
            contentId: att.cid ? att.cid : null,
            inline: att.contentDisposition === 'inline' || att.related === true,
          });
          if (typeof att.release === 'function') att.release();
        });
      } catch (err) {
        fail(err);
      }
    });
    parser.on('end', () => {
      if (settled) return;
      try {
        const lines = parser.headerLines || [];
        const tree = (parser as unknown as { tree?: unknown }).tree;
        const outcome: MailParserOutcome = {
          headers,
          headerLines: lines,
          text,
          html,
          textConversionError,
          attachments,
          boundaries: collectBoundaries(tree, headers),
        };
        settled = true;
        resolve(outcome);
      } catch (err) {
        fail(err);
      }
    });
    try {
      parser.end(buf);
    } catch (err) {
      fail(err);
    }
  });
}

function firstLine(lines: ReadonlyArray<{ key: string; line: string }>, key: string): string | undefined {
  for (const l of lines) if (l.key === key) return rawHeaderValue(l.line);
  return undefined;
}

function buildResult(buf: Buffer, out: MailParserOutcome, opts: ParseOptions, sha: string): ParsedMail {
  const defects: string[] = [];
  const { headers, headerLines } = out;
  const subjectValue = headers.get('subject');
  const dateValue = firstLine(headerLines, 'date');
  let text = out.text;
  if (out.html && text.trim() === '') {
    const conv = htmlToPlain(out.html);
    text = conv.text;
    if (conv.failed) defects.push('html-to-text-failed');
  } else if (out.textConversionError) {
    defects.push('html-to-text-failed');
    if (out.html) text = text + '\n' + stripHtml(out.html);
  }
  for (const b of out.boundaries) {
    if (b === null) defects.push('missing-boundary');
    else if (!hasClosingDelimiter(buf, b)) defects.push('missing-final-boundary');
  }
  const mail: ParsedMail = {
    messageId: firstMessageId(firstLine(headerLines, 'message-id')),
    subject: typeof subjectValue === 'string' ? subjectValue : '',
    date: parseDateHeader(dateValue),
    from: addressesOf(headers.get('from')),
    sender: addressesOf(headers.get('sender')),
    to: addressesOf(headers.get('to')),
    cc: addressesOf(headers.get('cc')),
    bcc: addressesOf(headers.get('bcc')),
    replyTo: addressesOf(headers.get('reply-to')),
    inReplyTo: firstMessageId(firstLine(headerLines, 'in-reply-to')),
    references: headerLines.filter((l) => l.key === 'references').flatMap((l) => allMessageIds(rawHeaderValue(l.line))),
    text: capText(text, opts.maxTextChars),
    attachments: out.attachments,
    bodySha256: sha,
    headers: selectHeaders(opts.headerNames, headerLines),
    defects: [],
    status: 'ok',
  };
  mail.defects = finishDefects(defects, mail, dateValue !== undefined);
  return mail;
}

/**
 * Parses one raw message (as received, CRLF or LF) into what the indexer needs. Never throws and
 * never rejects: when mailparser fails the fallback scan answers (status 'partial').
 */
export async function parseMail(raw: Buffer | Uint8Array, opts: ParseOptions): Promise<ParsedMail> {
  let buf: Buffer;
  let sha: string;
  try {
    buf = asBuffer(raw);
    sha = bodySha256(buf);
    if (!hasHeaderBlock(buf)) return fallbackParse(buf, opts, ['no-header-block']);
  } catch {
    return fallbackParse(raw, opts, ['parse-error']);
  }
  try {
    const out = await runMailParser(buf);
    return buildResult(buf, out, opts, sha);
  } catch {
    return fallbackParse(buf, opts, ['parse-error']);
  }
}
