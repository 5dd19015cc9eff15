import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestArchive, type TestArchive } from '../helpers/archive.js';
import { enmimeCorpus, enmimeLowQualityCorpus, pythonEmailCorpus, toCrlf } from '../helpers/corpora.js';
import { openSmtp } from '../helpers/smtp-client.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const corpora = [pythonEmailCorpus(), enmimeCorpus(), enmimeLowQualityCorpus()];
for (const c of corpora) if (c.files.length === 0) console.warn(`[skip] corpus ${c.name} not installed (${c.install}): its SMTP round-trip test is skipped`);

/** What goes over the wire: CRLF lines, no mbox "From " line, ending in CRLF as DATA requires. */
function wireBytes(file: string): Buffer {
  let text = toCrlf(fs.readFileSync(file)).toString('latin1');
  if (text.startsWith('From ')) text = text.slice(text.indexOf('\r\n') + 2);
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

let archive: TestArchive;
beforeAll(async () => {
  archive = await startTestArchive();
});
afterAll(async () => {
  await archive.close();
});

describe.each(corpora.filter((c) => c.files.length > 0))('real-world corpus $name over SMTP', (corpus) => {
  it('every message is accepted, stored byte-exact, and malformed ones are flagged, not lost', async () => {
    const session = await openSmtp(archive.smtp.port);
    const sent = new Map<string, string>();
    for (const file of corpus.files) {
      const bytes = wireBytes(file);
      const reply = await session.send({ from: 'corpus@example.com', to: ['archive@localhost'] }, bytes);
      expect(reply.code, `${path.basename(file)}: ${reply.response}`).toBe(250);
      sent.set(sha(bytes), path.basename(file));
    }
    await session.close();
    await archive.indexer.idle();

    const db = (await import('../../src/db/database.js')).openDatabase({ file: path.join(archive.config.dataDir, 'spindle.db') });
    const rows = db.prepare('SELECT m.id, m.parse_status, m.defects, d.blob_sha256 FROM deliveries d JOIN messages m ON m.id = d.message').all() as Array<{ id: number; parse_status: string; defects: string; blob_sha256: string }>;
    db.close();
    const byBlob = new Map(rows.map((r) => [r.blob_sha256, r]));
    for (const [hash, name] of sent) {
      const row = byBlob.get(hash);
      expect(row, `${name} is in the archive`).toBeDefined();
      const raw = await archive.api(`/api/messages/${row!.id}/raw`);
      // A same-content duplicate is served by its first copy; compare against its own blob then.
      if (sha(raw.raw) !== hash) expect(rows.filter((r) => r.id === row!.id).length, name).toBeGreaterThan(1);
      else expect(sha(raw.raw), name).toBe(hash);
    }
    if (corpus.name === 'enmime-low-quality') {
      const bad = rows.find((r) => sent.get(r.blob_sha256) === 'bad-final-boundary.raw');
      expect(bad, 'bad-final-boundary.raw archived').toBeDefined();
      expect(JSON.parse(bad!.defects)).toContain('missing-final-boundary');
      const detail = await archive.api<{ defects: string[]; parse_status: string }>(`/api/messages/${bad!.id}`);
      expect(detail.body.defects).toContain('missing-final-boundary');
    }
  }, 120_000);
});
