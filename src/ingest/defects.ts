/** Defect codes recorded for a parsed message, and the checks that find them (missing headers, broken multipart boundaries). */
import type { Headers } from 'mailparser';
import type { ParsedMail } from './types.js';

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

export function finishDefects(defects: string[], mail: Pick<ParsedMail, 'from' | 'messageId' | 'date'>, hasDateHeader: boolean): string[] {
  if (mail.from.length === 0) defects.push('no-from');
  if (!hasDateHeader) defects.push('no-date');
  else if (mail.date === null) defects.push('bad-date');
  if (mail.messageId === null) defects.push('no-message-id');
  return [...new Set(defects)];
}

/** The bits of MailParser's internal tree we read (not part of its typed API; read defensively). */
interface TreeNode {
  contentType?: unknown;
  headers?: unknown;
  children?: unknown;
  node?: { _boundary?: unknown };
}

export function collectBoundaries(tree: unknown, rootHeaders: Headers): (Buffer | null)[] {
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
export function hasClosingDelimiter(buf: Buffer, boundary: Buffer): boolean {
  const needle = Buffer.concat([Buffer.from('--'), boundary, Buffer.from('--')]);
  let i = buf.indexOf(needle);
  while (i >= 0) {
    if (i === 0 || buf[i - 1] === 0x0a) return true;
    i = buf.indexOf(needle, i + 1);
  }
  return false;
}
