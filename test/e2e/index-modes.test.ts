import { afterEach, describe, expect, it } from 'vitest';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { sendMail } from '../helpers/smtp-client.js';

let archive: TestArchive | null = null;
afterEach(async () => {
  await archive?.close();
  archive = null;
});

// SPINDLE_PARSE_WORKERS: 0 indexes on the main thread, 1 (the default, used by every other test) on
// the index thread, N > 1 on the index thread with N parse workers of its own.
describe.each(['0', '2'])('SPINDLE_PARSE_WORKERS=%s', (workers) => {
  it('archives, indexes and finds mail', async () => {
    archive = await startTestArchive({ SPINDLE_PARSE_WORKERS: workers });
    for (const word of ['alpha', 'bravo', 'charlie']) {
      const raw = buildMessage({ subject: `mode ${word}`, body: `the word is ${word}${workers}` });
      expect((await sendMail(archive.smtp.port, { from: 'alice@example.com', to: ['archive@localhost'] }, raw)).code).toBe(250);
    }
    await archive.indexer.idle();
    const r = await archive.api<{ total: number; items: Array<{ subject: string }> }>(`/api/search?q=${encodeURIComponent(`bravo${workers}`)}`);
    expect(r.status).toBe(200);
    expect(r.body.items.map((i) => i.subject)).toEqual(['mode bravo']);
    expect((await archive.api<{ total: number }>('/api/search?q=mode')).body.total).toBe(3);
  }, 30_000);
});
