import { spawn } from 'node:child_process';

/**
 * Independent readers for export files: Python's standard library (mailbox, zipfile, csv), so the
 * tests do not check Spindle's writers with Spindle's own idea of the formats.
 */
function python<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`python3 exited ${code}: ${err}`))));
  });
}

export interface PyMboxMessage {
  /** After mboxrd un-quoting. */
  sha256: string;
  size: number;
  /** The From line after "From ". */
  from: string;
  /** base64 of the un-quoted bytes (for small fixtures). */
  b64: string;
}

/** Reads an mbox with mailbox.mbox and un-quotes each message the mboxrd way (one '>' off every ^>+From ). */
export function readMboxWithPython(file: string): Promise<PyMboxMessage[]> {
  return python(`
import base64, hashlib, json, mailbox, re, sys
box = mailbox.mbox(sys.argv[1], create=False)
out = []
for key in box.iterkeys():
    raw = re.sub(rb'(?m)^>(>*From )', rb'\\1', box.get_bytes(key))
    out.append({'sha256': hashlib.sha256(raw).hexdigest(), 'size': len(raw), 'from': box.get_message(key).get_from(),
                'b64': base64.b64encode(raw).decode() if len(raw) < 100000 else ''})
print(json.dumps(out))
`, [file]);
}

export interface PyZip {
  /** testzip(): the first entry with a bad CRC, or null. */
  bad: string | null;
  entries: Array<{ name: string; size: number; sha256: string; date_time: number[] }>;
  manifest: Array<Record<string, string>>;
}

/** Opens a zip with zipfile, checks every CRC, hashes every entry, parses manifest.csv with csv. */
export function readZipWithPython(file: string): Promise<PyZip> {
  return python(`
import csv, hashlib, io, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    entries = [{'name': i.filename, 'size': i.file_size, 'sha256': hashlib.sha256(z.read(i)).hexdigest(), 'date_time': list(i.date_time)} for i in z.infolist()]
    names = z.namelist()
    manifest = list(csv.DictReader(io.StringIO(z.read('manifest.csv').decode('utf-8'), newline=''))) if 'manifest.csv' in names else []
print(json.dumps({'bad': bad, 'entries': entries, 'manifest': manifest}))
`, [file]);
}
