/** Turning a message body into indexable plain text: HTML to text (html-to-text or a tag stripper) and length capping. */

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
export const MAX_HTML_TO_TEXT = 512 * 1024;

export function capText(s: string, max: number): string {
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

export function htmlToPlain(html: string): { text: string; failed: boolean } {
  if (htmlToTextFn && html.length <= MAX_HTML_TO_TEXT) {
    try {
      return { text: htmlToTextFn(html, { wordwrap: false, limits: { maxDepth: 1000 } }), failed: false };
    } catch {
      return { text: stripHtml(html), failed: true };
    }
  }
  return { text: stripHtml(html), failed: false };
}
