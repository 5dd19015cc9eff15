/** The fallback header scan: a never-throwing partial parse for when mailparser cannot be used. */
import { capText } from './body-text.js';
import { finishDefects } from './defects.js';
import { addressesFromRaw, allMessageIds, decodeWordsSafe, firstMessageId, parseDateHeader, rawHeaderValue, selectHeaders } from './header-values.js';
import type { ParseOptions } from './parse.js';
import { asBuffer, bodySha256, EMPTY_SHA256, findBodyStart, hasHeaderBlock } from './raw-message.js';
import type { ParsedMail } from './types.js';

/** At most this many bytes of a header block are looked at by the fallback scan. */
const MAX_SCAN_HEADER_BYTES = 1024 * 1024;

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
