/**
 * mbox in its mboxrd variant (RFC 4155 and the Qmail/mutt "mboxrd" convention).
 *
 * Each message is written as `From <sender> <asctime>\n`, then its archived bytes exactly, with
 * one change: a line that starts with `From `, after any number of `>`, gets one more `>`. Then a
 * `\n` ends the message. Nothing else is normalised: CRLF messages keep their CRLF, a reader's
 * mboxrd un-quoting (remove one `>` from every line matching `^>+From `) gives back the original
 * bytes. Quoting every `>*From ` line, not only `From ` lines as plain mbox (mboxo) does, is what
 * makes that reversible: `>From ` in a body is written `>>From ` and comes back as `>From `.
 *
 * The separator is a bare `\n` even after a CRLF message: that is the line a reader (Python's
 * mailbox, mutt) looks for before the next `From ` line, and it is not part of the message. A
 * message whose last line has no line break at all (never the case over SMTP, where DATA ends
 * with CRLF) gets a `\n` before the separator; that byte is the one addition un-quoting cannot
 * tell from the message, and the manifest's size and sha256 still describe the original.
 */
import { andThen, writeAll, type ByteSink } from './byte-sink.js';
import type { ExportItem } from './manifest.js';

const FROM = Buffer.from('From ');
const GT = 0x3e;
const LF = 0x0a;
const NEWLINE = Buffer.from('\n');
const ARROW = Buffer.from('>');
const MAX_RUN = 64 * 1024;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number): string => String(n).padStart(2, '0');

/** C asctime() in UTC, as mbox `From ` lines carry it: `Tue Mar  5 10:00:00 2024`. */
export function asctime(ms: number): string {
  const d = new Date(Number.isFinite(ms) ? ms : 0);
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/**
 * The separator line: the envelope sender (MAIL FROM), or MAILER-DAEMON for the null sender, and
 * when the archive first received the message. Whitespace would end the address early for a
 * reader, so it becomes `_`.
 */
export function fromLine(item: Pick<ExportItem, 'envelopeSender' | 'firstSeen' | 'sortTime'>): string {
  const sender = (item.envelopeSender ?? '').replace(/[\s\x00-\x1f\x7f]/g, '_') || 'MAILER-DAEMON';
  const seen = Date.parse(item.firstSeen);
  return `From ${sender} ${asctime(Number.isFinite(seen) ? seen : item.sortTime)}\n`;
}

/**
 * Quotes one message as it streams past. Only line starts are looked at; the rest of each line is
 * skipped with indexOf('\n'), and the input is passed on as slices, cut only where a `>` is
 * inserted, so a message without `From ` lines goes out as the one buffer it came in. A
 * candidate `>>>From` split across chunks is held back as counts, never as bytes, so one of any
 * length costs no memory.
 */
export class MboxrdQuoter {
  private atLineStart = true;
  /** A candidate at the end of the previous chunk: its `>` count, and bytes of `From ` matched after them. */
  private heldArrows = 0;
  private heldFrom = 0;
  private held = false;
  private lastByte = -1;

  /** Quotes one chunk; the returned buffers are slices of `chunk` or new. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    this.lastByte = chunk[n - 1]!;
    let i = 0;
    if (this.held) {
      // Finish the candidate carried over, from its counts.
      while (i < n) {
        const b = chunk[i]!;
        if (this.heldFrom === 0 && b === GT) this.heldArrows++;
        else if (b === FROM[this.heldFrom]) this.heldFrom++;
        else break;
        i++;
        if (this.heldFrom === FROM.length) break;
      }
      if (i === n && this.heldFrom < FROM.length) return out; // still undecided
      this.releaseHeld(out, this.heldFrom === FROM.length);
      this.atLineStart = false;
    }
    let sliceStart = i;
    while (i < n) {
      if (!this.atLineStart) {
        const nl = chunk.indexOf(LF, i);
        if (nl === -1) break;
        i = nl + 1;
        this.atLineStart = true;
        continue;
      }
      this.atLineStart = false;
      const first = chunk[i]!;
      if (first !== GT && first !== FROM[0]) continue; // most lines: nothing to look at
      let j = i;
      while (j < n && chunk[j] === GT) j++;
      let k = 0;
      while (j < n && k < FROM.length && chunk[j] === FROM[k]) {
        j++;
        k++;
      }
      if (k === FROM.length) {
        out.push(chunk.subarray(sliceStart, i), ARROW);
        sliceStart = i;
        i = j;
      } else if (j === n) {
        // The chunk ends inside what may still become `>*From `: hold it back as counts.
        if (sliceStart < i) out.push(chunk.subarray(sliceStart, i));
        this.held = true;
        this.heldArrows = j - i - k;
        this.heldFrom = k;
        return out;
      } else {
        i = j; // not a candidate; j may be the line's end, which the scan above finds
      }
    }
    if (sliceStart < n) out.push(chunk.subarray(sliceStart, n));
    return out;
  }

  /** Ends the message: a held candidate, a line break if the last line had none, the separator. */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.held) this.releaseHeld(out, false);
    if (this.lastByte !== -1 && this.lastByte !== LF) out.push(NEWLINE);
    out.push(NEWLINE);
    return out;
  }

  private releaseHeld(out: Buffer[], quote: boolean): void {
    for (let left = this.heldArrows + (quote ? 1 : 0); left > 0; left -= MAX_RUN) out.push(Buffer.alloc(Math.min(left, MAX_RUN), GT));
    if (this.heldFrom > 0) out.push(FROM.subarray(0, this.heldFrom));
    this.held = false;
    this.heldArrows = 0;
    this.heldFrom = 0;
  }
}

/** Writes one message in mboxrd form: From line, quoted bytes, separator. Undefined when it was only buffered. */
export function writeMboxMessage(sink: ByteSink, item: ExportItem, body: Buffer | AsyncIterable<Buffer>): Promise<void> | undefined {
  const quoter = new MboxrdQuoter();
  const head = sink.writeText(fromLine(item));
  if (Buffer.isBuffer(body)) return andThen(head, () => writeAll(sink, [...quoter.push(body), ...quoter.end()]));
  return (async () => {
    await head;
    for await (const chunk of body) await writeAll(sink, quoter.push(chunk));
    await writeAll(sink, quoter.end());
  })();
}
