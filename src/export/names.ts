/**
 * File names for exported messages: `2024-03-01_1204_subject-words_ID.eml`. Exports end up on
 * Windows shares, macOS laptops and zip tools, so a name is plain ASCII, has no character any
 * of them reserves, is never a reserved device name, and stays far below every length limit; the
 * message id at the end keeps names unique however alike the subjects are.
 */

const MAX_SUBJECT_CHARS = 50;
/** CON, NUL, COM1… are devices on Windows whatever the extension; `CON.eml` cannot be created. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `2024-03-01_1204` in UTC: sorts by date in any file listing. */
export function nameDate(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '0000-00-00_0000';
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}_${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}`;
}

/** Lower-case ASCII words joined by '-': accents are folded (`Grüße` → `grusse`), everything else dropped. */
export function subjectWords(subject: string, max = MAX_SUBJECT_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(subject);
  const folded = (ascii ? subject : subject.normalize('NFKD'))
    .replace(/\p{M}/gu, '')
    .replace(/ß/g, 'ss')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (folded.length <= max) return folded;
  const cut = folded.slice(0, max);
  // End on a whole word when one ends reasonably close to the limit.
  const lastDash = cut.lastIndexOf('-');
  return (lastDash > max / 2 ? cut.slice(0, lastDash) : cut).replace(/-+$/, '');
}

/** A name that every common file system accepts: reserved device names get a leading '_'. */
export function safeFileName(name: string): string {
  const clean = name.replace(/[. ]+$/, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  const safe = clean || '_';
  return WINDOWS_RESERVED.test(safe) ? `_${safe}` : safe;
}

/** The .eml name of one message in a zip or directory export. */
export function emlFileName(message: { id: number; sortTime: number; subject: string }): string {
  return safeFileName(`${nameDate(message.sortTime)}_${subjectWords(message.subject) || 'no-subject'}_${message.id}.eml`);
}

/** The download name of an export made at `now`, e.g. `spindle-export-20240305-100000.mbox`. */
export function downloadName(now: Date, extension: 'mbox' | 'zip'): string {
  const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return `spindle-export-${stamp}.${extension}`;
}
