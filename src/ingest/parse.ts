/** Parses one raw message into what the indexer needs, with mailparser (public entry point of the ingest parser). */
import { MailParser } from 'mailparser';
import type { AttachmentStream, Headers, MessageText } from 'mailparser';
import { capText, htmlToPlain, MAX_HTML_TO_TEXT, stripHtml } from './body-text.js';
import { collectBoundaries, finishDefects, hasClosingDelimiter } from './defects.js';
import { addressesOf, allMessageIds, firstMessageId, parseDateHeader, rawHeaderValue, selectHeaders } from './header-values.js';
import { fallbackParse } from './parse-fallback.js';
import { asBuffer, bodySha256, EMPTY_SHA256, hasHeaderBlock } from './raw-message.js';
import type { AttachmentInfo, ParsedMail } from './types.js';

export { stripHtml } from './body-text.js';
export { DEFECT_CODES, type DefectCode } from './defects.js';
export { allMessageIds, firstMessageId, parseDateHeader } from './header-values.js';
export { fallbackParse } from './parse-fallback.js';
export { bodySha256, findBodyStart, hasHeaderBlock } from './raw-message.js';

export interface ParseOptions {
  /** Raw headers to return by (lower-case) name in `headers`, e.g. ['x-original-to']. */
  headerNames: string[];
  /** `text` is cut to at most this many UTF-16 code units. */
  maxTextChars: number;
}

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
