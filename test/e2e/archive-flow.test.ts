import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import type { SearchResult } from '../../src/search/search.js';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { openSmtp, sendMail } from '../helpers/smtp-client.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
let archive: TestArchive | null = null;
afterEach(async () => {
  await archive?.close();
  archive = null;
});

async function search(a: TestArchive, q: string): Promise<SearchResult> {
  const res = await a.api<SearchResult>(`/api/search?q=${encodeURIComponent(q)}`);
  expect(res.status).toBe(200);
  return res.body;
}

describe('SMTP in, search out', () => {
  it('archives a journal copy byte for byte and finds it', async () => {
    archive = await startTestArchive();
    const raw = buildMessage({ subject: 'Quarterly invoice 4711', body: 'Please find the figures.', to: ['Bob <bob@example.com>'] });
    const reply = await sendMail(archive.smtp.port, { from: 'alice@example.com', to: ['archive@localhost'] }, raw);
    expect(reply.code).toBe(250);
    expect(reply.response).toMatch(/Archived as seq 1/);
    await archive.indexer.idle();

    const found = await search(archive, 'invoice from:alice');
    expect(found.total).toBe(1);
    const hit = found.items[0]!;
    expect(hit).toMatchObject({ subject: 'Quarterly invoice 4711', from: { address: 'alice@example.com' } });
    expect(hit.to).toEqual([{ address: 'bob@example.com', name: 'Bob' }]);

    const rawRes = await archive.api(`/api/messages/${hit.id}/raw`);
    expect(rawRes.headers.get('content-type')).toMatch(/message\/rfc822/);
    expect(sha(rawRes.raw)).toBe(sha(raw));

    const detail = await archive.api<{ deliveries: unknown[]; recipients: unknown[]; sha256: string }>(`/api/messages/${hit.id}`);
    expect(detail.body.sha256).toBe(sha(raw));
    expect(detail.body.deliveries).toHaveLength(1);
  });

  it('recovers Bcc recipients from encoded envelope addresses, without any header naming them', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    const raw = buildMessage({ subject: 'Board minutes', to: ['carol@example.com'], cc: ['dave@example.com'] });
    const rcpts = ['carol@example.com', 'dave@example.com', 'erin@example.org'].map((a) => encodeJournalAddress('rcpt', a, 'archive.example'));
    const reply = await sendMail(archive.smtp.port, { from: 'alice@example.com', to: [...rcpts, encodeJournalAddress('from', 'alice@example.com', 'archive.example')] }, raw);
    expect(reply.code).toBe(250);
    await archive.indexer.idle();
    expect((await search(archive, 'bcc:erin@example.org')).total).toBe(1);
    expect((await search(archive, 'to:erin@example.org')).total).toBe(1);
    expect((await search(archive, 'bcc:carol@example.com')).total).toBe(0);
    expect((await search(archive, 'cc:dave')).total).toBe(1);
    const id = (await search(archive, 'board')).items[0]!.id;
    const detail = await archive.api<{ recipients: Array<{ address: string; kind: string }> }>(`/api/messages/${id}`);
    expect(detail.body.recipients).toEqual(expect.arrayContaining([
      expect.objectContaining({ address: 'erin@example.org', kind: 'bcc' }),
      expect.objectContaining({ address: 'erin@example.org', kind: 'envelope' }),
      expect.objectContaining({ address: 'carol@example.com', kind: 'to' }),
      expect.objectContaining({ address: 'carol@example.com', kind: 'envelope' }),
    ]));
  });

  it('accepts encoded journal addresses longer than 253 octets and with unusual local parts', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    const long = `${'l'.repeat(200)}.very-long-name@${'sub.'.repeat(20)}example.com`;
    const odd = 'john..doe+tag=x@example.com';
    const reply = await sendMail(archive.smtp.port, {
      from: 'alice@example.com',
      to: [encodeJournalAddress('rcpt', long, 'archive.example'), encodeJournalAddress('rcpt', odd, 'archive.example')],
    }, buildMessage({ subject: 'long rcpt', to: ['x@example.com'] }));
    expect(reply.code, reply.response).toBe(250);
    await archive.indexer.idle();
    const id = (await search(archive, 'subject:long')).items[0]!.id;
    const detail = await archive.api<{ recipients: Array<{ address: string; kind: string }> }>(`/api/messages/${id}`);
    const envelope = detail.body.recipients.filter((r) => r.kind === 'envelope').map((r) => r.address).sort();
    expect(envelope).toEqual([odd, long].sort());
  });

  it('merges byte-identical split deliveries and same-content copies, keeps distinct bodies apart', async () => {
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    const port = archive.smtp.port;
    const enc = (a: string) => encodeJournalAddress('rcpt', a, 'archive.example');
    const raw = buildMessage({ subject: 'Split', messageId: 'split@example.com', to: ['list@example.com'] });
    // Postfix split by destination_recipient_limit: same bytes, different RCPT sets.
    expect((await sendMail(port, { from: 'a@example.com', to: [enc('u1@example.com'), enc('u2@example.com')] }, raw)).code).toBe(250);
    expect((await sendMail(port, { from: 'a@example.com', to: [enc('u3@example.com')] }, raw)).code).toBe(250);
    // Re-injected copy: an extra Received header, same Message-ID and body.
    expect((await sendMail(port, { from: 'a@example.com', to: [enc('u4@example.com')] }, `Received: from relay by mx; Tue, 5 Mar 2024 10:00:01 +0000\r\n${raw}`)).code).toBe(250);
    // Same Message-ID, different body: a different message.
    const forged = buildMessage({ subject: 'Split', messageId: 'split@example.com', body: 'Something else entirely.' });
    expect((await sendMail(port, { from: 'a@example.com', to: [enc('u5@example.com')] }, forged)).code).toBe(250);
    await archive.indexer.idle();

    const res = await search(archive, 'subject:split');
    expect(res.total).toBe(2);
    for (const u of ['u1', 'u2', 'u3', 'u4']) expect((await search(archive, `bcc:${u}@example.com`)).total).toBe(1);
    const merged = res.items.find((i) => i.snippet.startsWith('Hello'))!;
    const detail = await archive.api<{ deliveries: Array<{ dedup: string }> }>(`/api/messages/${merged.id}`);
    expect(detail.body.deliveries.map((d) => d.dedup)).toEqual(['new', 'same-bytes', 'same-content']);
    const stats = await archive.api<{ messages: number; deliveries: number; duplicates: number }>('/api/stats');
    expect(stats.body).toMatchObject({ messages: 2, deliveries: 4, duplicates: 2 });
  });

  it('archives a message without Message-ID and dedups it by bytes only', async () => {
    archive = await startTestArchive();
    const raw = buildMessage({ subject: 'anonymous note', messageId: null });
    for (let i = 0; i < 2; i++) expect((await sendMail(archive.smtp.port, { from: '', to: ['archive@localhost'] }, raw)).code).toBe(250);
    const other = buildMessage({ subject: 'anonymous note', messageId: null, body: 'different' });
    expect((await sendMail(archive.smtp.port, { from: '', to: ['archive@localhost'] }, other)).code).toBe(250);
    await archive.indexer.idle();
    expect((await search(archive, 'anonymous')).total).toBe(2);
  });

  it('answers 550 for a non-archive recipient and 552 for an oversized message', async () => {
    archive = await startTestArchive({ SPINDLE_MAX_MESSAGE_SIZE: '10KiB' });
    const refused = await sendMail(archive.smtp.port, { from: 'a@example.com', to: ['someone@else.example'] }, buildMessage({}));
    expect(refused.code).toBe(550);
    const big = buildMessage({ body: 'x'.repeat(20_000) });
    const tooBig = await sendMail(archive.smtp.port, { from: 'a@example.com', to: ['archive@localhost'] }, big);
    expect(tooBig.code).toBe(552);
    // The session stays usable and nothing was archived.
    const ok = await sendMail(archive.smtp.port, { from: 'a@example.com', to: ['archive@localhost'] }, buildMessage({ subject: 'small' }));
    expect(ok.code).toBe(250);
    await archive.indexer.idle();
    expect((await search(archive, '')).total).toBe(1);
  });

  it('pages newest first with a keyset cursor', async () => {
    archive = await startTestArchive();
    const session = await openSmtp(archive.smtp.port);
    for (let day = 1; day <= 7; day++) {
      const raw = buildMessage({ subject: `daily report ${day}`, date: `Mon, 0${day} Apr 2024 09:00:00 +0000` });
      expect((await session.send({ from: 'r@example.com', to: ['archive@localhost'] }, raw)).code).toBe(250);
    }
    await session.close();
    await archive.indexer.idle();
    const first = await archive.api<SearchResult>('/api/search?q=report&limit=3');
    expect(first.body.total).toBe(7);
    expect(first.body.items.map((i) => i.subject)).toEqual(['daily report 7', 'daily report 6', 'daily report 5']);
    const second = await archive.api<SearchResult>(`/api/search?q=report&limit=3&cursor=${first.body.next_cursor}`);
    expect(second.body.items.map((i) => i.subject)).toEqual(['daily report 4', 'daily report 3', 'daily report 2']);
    const ranged = await archive.api<SearchResult>('/api/search?q=report after:2024-04-03 before:2024-04-05');
    expect(ranged.body.items.map((i) => i.subject)).toEqual(['daily report 4', 'daily report 3']);
  });
});
