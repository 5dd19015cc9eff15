import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/ledger.js';
import type { DeliveryBody } from '../../src/ledger/records.js';
import { checkChain, listSegments } from '../../src/ledger/segments.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

const delivery = (i: number): DeliveryBody => ({
  type: 'delivery', blob: i.toString(16).padStart(64, '0'), size: 100 + i, stored: 50,
  env: { mailFrom: 'a@example.com', rcpts: [{ address: 'archive@localhost' }], client: '127.0.0.1', helo: 'mx', session: 's', tls: false },
});

describe('ledger', () => {
  it('assigns consecutive seqs, chains hashes and resumes after reopen', async () => {
    const dir = path.join(tempDir(), 'ledger');
    const ledger = await openLedger({ dir, log: silentLog() });
    const recs = await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.append(delivery(i))));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await ledger.close();
    const again = await openLedger({ dir, log: silentLog() });
    expect(again.lastSeq()).toBe(50);
    const r = await again.append(delivery(99));
    expect(r.seq).toBe(51);
    await again.close();
    const chain = await checkChain(dir);
    expect(chain).toMatchObject({ records: 51, lastSeq: 51, firstBreak: null });
  });

  it('group-commits concurrent appends into few writes', async () => {
    const dir = path.join(tempDir(), 'ledger');
    const ledger = await openLedger({ dir, log: silentLog() });
    const commits: number[] = [];
    ledger.onCommit((records) => commits.push(records.length));
    await Promise.all(Array.from({ length: 200 }, (_, i) => ledger.append(delivery(i))));
    expect(commits.reduce((a, b) => a + b, 0)).toBe(200);
    expect(commits.length).toBeLessThan(200);
    await ledger.close();
  });

  it('rotates segments and reads across them', async () => {
    const dir = path.join(tempDir(), 'ledger');
    const ledger = await openLedger({ dir, log: silentLog(), segmentBytes: 2000 });
    for (let i = 0; i < 40; i++) await ledger.append(delivery(i));
    expect(listSegments(dir).length).toBeGreaterThan(3);
    const seqs: number[] = [];
    for await (const r of ledger.read(15)) seqs.push(r.seq);
    expect(seqs).toEqual(Array.from({ length: 26 }, (_, i) => i + 15));
    await ledger.close();
    expect((await checkChain(dir)).firstBreak).toBeNull();
  });

  it('moves a torn last line aside on open and continues the chain', async () => {
    const dir = path.join(tempDir(), 'ledger');
    const ledger = await openLedger({ dir, log: silentLog() });
    for (let i = 0; i < 3; i++) await ledger.append(delivery(i));
    await ledger.close();
    const seg = listSegments(dir)[0]!.file;
    fs.appendFileSync(seg, '{"seq":4,"ts":"2024-');
    const again = await openLedger({ dir, log: silentLog() });
    expect(again.lastSeq()).toBe(3);
    await again.append(delivery(3));
    await again.close();
    expect(fs.readdirSync(dir).some((n) => n.startsWith('torn-'))).toBe(true);
    expect((await checkChain(dir)).firstBreak).toBeNull();
  });

  it('detects an edited, a removed and a reordered record', async () => {
    const dir = path.join(tempDir(), 'ledger');
    const ledger = await openLedger({ dir, log: silentLog() });
    for (let i = 0; i < 5; i++) await ledger.append(delivery(i));
    await ledger.close();
    const seg = listSegments(dir)[0]!.file;
    const lines = fs.readFileSync(seg, 'utf8').trimEnd().split('\n');

    fs.writeFileSync(seg, [...lines.slice(0, 2), lines[2]!.replace('"size":102', '"size":999'), ...lines.slice(3)].join('\n') + '\n');
    expect((await checkChain(dir)).firstBreak).toMatchObject({ seq: 4, lineNo: 4 });

    fs.writeFileSync(seg, [...lines.slice(0, 1), ...lines.slice(2)].join('\n') + '\n');
    expect((await checkChain(dir)).firstBreak).toMatchObject({ seq: 3, lineNo: 2 });

    fs.writeFileSync(seg, [lines[1], lines[0], ...lines.slice(2)].join('\n') + '\n');
    expect((await checkChain(dir)).firstBreak).toMatchObject({ seq: 2, lineNo: 1 });
  });
});
