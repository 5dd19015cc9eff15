import { afterEach, describe, expect, it } from 'vitest';
import type { SearchResult } from '../../src/search/search.js';
import { startTestArchive, type TestArchive } from '../helpers/archive.js';
import { postfixAvailable, postfixUnavailableReason, startPostfix, type PostfixInstance } from '../helpers/postfix.js';

const available = postfixAvailable();
if (!available) console.warn(`[skip] ${postfixUnavailableReason()} — end-to-end tests through real Postfix skipped (.ci/run installs it)`);

let archive: TestArchive | null = null;
let postfix: PostfixInstance | null = null;
afterEach(async () => {
  await postfix?.stop();
  await archive?.close();
  postfix = null;
  archive = null;
});

async function search(q: string): Promise<SearchResult> {
  const res = await archive!.api<SearchResult>(`/api/search?q=${encodeURIComponent(q)}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function deliverAndIndex(pf: PostfixInstance): Promise<void> {
  await pf.waitForQueueEmpty(20_000);
  await archive!.indexer.idle();
}

describe.skipIf(!available)('through a real Postfix', () => {
  it('envelope mode: archived once; the Bcc recipient is found with bcc: and to:, and no stored byte names them', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    postfix = await startPostfix({ archiveHost: '127.0.0.1', archivePort: archive.smtp.port, mode: 'envelope' });
    await postfix.send({
      from: 'alice@example.com', to: ['bob@example.com'], cc: ['carol@example.com'], bcc: ['dave.secret@example.net'],
      subject: 'Merger plans', body: 'Strictly confidential figures.',
    });
    await deliverAndIndex(postfix);

    const all = await search('merger');
    expect(all.total, await postfix.log()).toBe(1);
    expect((await search('bcc:dave.secret@example.net')).total).toBe(1);
    expect((await search('to:dave.secret@example.net')).total).toBe(1);
    expect((await search('bcc:bob@example.com')).total).toBe(0);
    expect((await search('cc:carol@example.com')).total).toBe(1);
    expect((await search('from:alice@example.com')).total).toBe(1);

    const id = all.items[0]!.id;
    const raw = (await archive.api(`/api/messages/${id}/raw`)).raw.toString('latin1');
    expect(raw).toContain('Subject: Merger plans');
    expect(raw).not.toMatch(/dave\.secret/i);
    expect(raw).not.toMatch(/^Bcc:/im);
    const detail = await archive.api<{ envelope_mode: string; envelope_sender: string; deliveries: Array<{ rcpts: Array<{ address: string; orcpt?: string }> }>; recipients: Array<{ address: string; kind: string }> }>(`/api/messages/${id}`);
    expect(detail.body.envelope_mode).toBe('envelope');
    // DSN is advertised, so Postfix sends DSN parameters (ORCPT, NOTIFY=NEVER) and they are kept.
    expect(detail.body.deliveries[0]!.rcpts).toEqual(expect.arrayContaining([
      { address: 'journal+rcpt.dave.secret=example.net@archive.example', orcpt: 'rfc822;journal+rcpt.dave.secret=example.net@archive.example' },
    ]));
    expect(detail.body.envelope_sender).toBe('alice@example.com');
    expect(detail.body.deliveries).toHaveLength(1);
    expect(detail.body.recipients).toEqual(expect.arrayContaining([
      { address: 'dave.secret@example.net', name: '', kind: 'bcc' },
      { address: 'dave.secret@example.net', name: '', kind: 'envelope' },
      expect.objectContaining({ address: 'bob@example.com', kind: 'to' }),
      expect.objectContaining({ address: 'carol@example.com', kind: 'cc' }),
    ]));
  }, 60_000);

  it('always_bcc mode: archived once, recipients from To/Cc only (Bcc is lost, as documented)', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: 'archive@archive.example' });
    postfix = await startPostfix({ archiveHost: '127.0.0.1', archivePort: archive.smtp.port, mode: 'always_bcc' });
    await postfix.send({ from: 'alice@example.com', to: ['bob@example.com'], cc: ['carol@example.com'], bcc: ['dave@example.net'], subject: 'Lunch' });
    await deliverAndIndex(postfix);
    expect((await search('lunch')).total, await postfix.log()).toBe(1);
    expect((await search('to:bob@example.com')).total).toBe(1);
    expect((await search('to:dave@example.net')).total).toBe(0);
  }, 60_000);

  it('envelope mode with a recipient limit: split deliveries are merged into one message with every recipient', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    postfix = await startPostfix({ archiveHost: '127.0.0.1', archivePort: archive.smtp.port, mode: 'envelope', recipientLimit: 3 });
    const to = Array.from({ length: 8 }, (_, i) => `member${i}@example.com`);
    await postfix.send({ from: 'list@example.com', to, subject: 'Newsletter' });
    await deliverAndIndex(postfix);
    const res = await search('newsletter');
    expect(res.total, await postfix.log()).toBe(1);
    const detail = await archive.api<{ deliveries: Array<{ dedup: string }>; recipients: Array<{ address: string; kind: string }> }>(`/api/messages/${res.items[0]!.id}`);
    expect(detail.body.deliveries.length).toBeGreaterThanOrEqual(3);
    expect(detail.body.deliveries.slice(1).every((d) => d.dedup === 'same-bytes')).toBe(true);
    const envelope = detail.body.recipients.filter((r) => r.kind === 'envelope').map((r) => r.address).sort();
    expect(envelope).toEqual(to.slice().sort());
    const stats = await archive.api<{ messages: number; duplicates: number }>('/api/stats');
    expect(stats.body.messages).toBe(1);
    expect(stats.body.duplicates).toBe(detail.body.deliveries.length - 1);
  }, 60_000);
});
