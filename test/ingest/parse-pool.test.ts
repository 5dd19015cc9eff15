import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMail } from '../../src/ingest/parse.js';
import { createParsePool, type ParsePool, type ParsePoolOptions } from '../../src/ingest/parse-pool.js';
import { enmimeCorpus, pythonEmailCorpus } from '../helpers/corpora.js';

const base = { headerNames: ['x-original-to'], maxTextChars: 20_000 };

/** A ~5 KB message shaped like real traffic: Received chain, DKIM, multipart/alternative, QP. */
function message5k(i: number): Buffer {
  const words = 'the quick brown fox jumps over lazy dog archive mail server postfix index search token message reply thread'.split(' ');
  let para = '';
  let n = 7 + i;
  while (para.length < 1300) {
    n = (n * 31 + 7) % 101;
    para += (words[n % words.length] ?? 'x') + (n % 13 === 0 ? '.\r\n' : ' ');
  }
  const html = `<html><head><style>p{margin:0}</style></head><body><div dir="ltr"><p>${para.replace(/\r\n/g, '</p>\r\n<p>')}</p><p><a href="https://example.com/x?y=${i}">link</a> &amp; more&nbsp;text</p></div></body></html>`;
  const qp = (s: string): string => s.replace(/=/g, '=3D');
  const headers = [
    'Return-Path: <alice@example.org>',
    'X-Original-To: archive@example.net',
    `Received: from mail-lf1-f54.google.com (mail-lf1-f54.google.com [209.85.167.54])\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Xyz12AbCdz9sQ\r\n\tfor <bob@example.net>; Tue, 12 Mar 2024 10:15:01 +0100 (CET)`,
    'Received: by mail-lf1-f54.google.com with SMTP id 2adb3069b0e04-513298d6859so4051893e87.3\r\n        for <bob@example.net>; Tue, 12 Mar 2024 02:15:01 -0700 (PDT)',
    'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n        d=example.org; s=20230601; t=1710234901; x=1710839701; darn=example.net;\r\n        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject\r\n         :date:message-id:reply-to;\r\n        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n        b=Xk3vYf0a8Lq1n7S2aW3c9Pq0Zr1fK5uT8mH2jD6xV4bN1pQ7sE0wR9yU3iO5lA2kJ\r\n         8gF4hT6nB0vC2xZ7qW1eR3tY5uI9oP0aS2dF4gH6jK8lZ1xC3vB5nM7qW9eR2tY4uI6\r\n         oP8aS0dF2gH4jK6lZ8xC0vB2nM4qW6eR8tY0uI2oP4aS6dF8gH0jK2lZ4xC6vB8nM0q==',
    'X-Google-Smtp-Source: AGHT+IH2wq1vQ6Yx0sZ9mP3kR7dL5nB8cF2jT4hW6gV1uE0yA9iO3pS5lK7zX2cN4mQ8rD1fJ6bG0vH9wY3tU5e',
    'MIME-Version: 1.0',
    'From: "Alice Example" <alice@Example.ORG>',
    'Date: Tue, 12 Mar 2024 10:15:01 +0100',
    `Message-ID: <CAF=${i}xYz0q1w2e3r4t5y6u7i8o9p0aSdFgHjKl@mail.gmail.com>`,
    `Subject: =?UTF-8?Q?Re=3A_Quarterly_report_=E2=80=93_n=C2=B0${i}?=`,
    'To: Bob <bob@example.net>, carol@example.net',
    'Cc: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>',
    `In-Reply-To: <prev-${i}@example.net>`,
    `References: <root@example.net> <prev-${i}@example.net>`,
    'Content-Type: multipart/alternative; boundary="000000000000b1c2d3e4f5a6b7c8"',
  ].join('\r\n');
  const b = '--000000000000b1c2d3e4f5a6b7c8';
  return Buffer.from(
    `${headers}\r\n\r\n${b}\r\nContent-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp(para)}\r\n\r\n` +
      `${b}\r\nContent-Type: text/html; charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp(html).replace(/(.{70})/g, '$1=\r\n')}\r\n\r\n${b}--\r\n`,
  );
}

/** ~100 KB: a short text part and a ~72 KB binary attachment in base64. */
function message100k(i: number): Buffer {
  const att = randomBytes(72 * 1024)
    .toString('base64')
    .replace(/(.{76})/g, '$1\r\n');
  return Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: report ${i}\r\nDate: Tue, 12 Mar 2024 10:15:01 +0100\r\nMessage-ID: <att-${i}@example.org>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--BOUND\r\n` +
      `Content-Type: application/pdf; name="report.pdf"\r\nContent-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${att}\r\n--BOUND--\r\n`,
  );
}

function hugeMessage(mb: number): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\r\n';
  return Buffer.from(`From: Big <big@Example.COM>\r\nSubject: huge\r\nMessage-ID: <huge@example.com>\r\n\r\n${line.repeat(Math.ceil((mb * 1048576) / line.length))}`);
}

/**
 * A stand-in worker (same protocol) for failure paths that a real message cannot trigger on demand:
 * a raw message containing CRASH exits the worker, THROW throws an uncaught error, HANG blocks
 * the thread forever, anything else answers with a stub result whose subject is 'stub:<first line>'.
 */
function stubWorker(mode: 'normal' | 'fail-to-start' = 'normal'): () => Worker {
  const code =
    mode === 'fail-to-start'
      ? `throw new Error('cannot start');`
      : `
import { parentPort } from 'node:worker_threads';
const stub = (subject) => ({ messageId: null, subject, date: null, from: [], sender: [], to: [], cc: [], bcc: [], replyTo: [],
  inReplyTo: null, references: [], text: '', attachments: [], bodySha256: '0'.repeat(64), headers: {}, defects: [], status: 'ok' });
const handle = (id, raw) => {
  const s = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
  if (s.includes('CRASH')) process.exit(7);
  if (s.includes('THROW')) setImmediate(() => { throw new Error('boom'); });
  if (s.includes('HANG')) for (;;) {}
  setTimeout(() => parentPort.postMessage({ id, result: stub('stub:' + s.split('\\r\\n')[0]) }), 5);
};
parentPort.on('message', (m) => { if (m.batch) for (const x of m.batch) handle(x.id, x.raw); else handle(m.id, m.raw); });
parentPort.postMessage({ ready: true });
`;
  const url = new URL('data:text/javascript,' + encodeURIComponent(code));
  return () => new Worker(url);
}

const pools: ParsePool[] = [];
function pool(opts: Partial<ParsePoolOptions> & Pick<ParsePoolOptions, 'size'>): ParsePool {
  const p = createParsePool({ timeoutMs: 10_000, ...base, ...opts });
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function corpusSample(): Buffer[] {
  const files = [...pythonEmailCorpus().files, ...enmimeCorpus().files];
  return files.map((f) => readFileSync(f));
}

describe('parse pool with worker threads', () => {
  it('gives the same results as parseMail on the calling thread, and leaves the caller buffers alone', async () => {
    const p = pool({ size: 2 });
    const inputs = [
      ...Array.from({ length: 40 }, (_, i) => message5k(i)),
      message100k(1),
      message100k(2),
      Buffer.from('no header block at all\n'),
      Buffer.alloc(0),
      ...corpusSample(),
    ];
    const copies = inputs.map((b) => Buffer.from(b));
    const viaPool = await Promise.all(inputs.map((b) => p.parse(b)));
    const inThread = await Promise.all(inputs.map((b) => parseMail(b, base)));
    expect(viaPool).toEqual(inThread);
    inputs.forEach((b, i) => expect(b.equals(copies[i] as Buffer)).toBe(true));
    expect(viaPool[0]?.subject).toBe('Re: Quarterly report – n°0');
    expect(viaPool[0]?.headers).toEqual({ 'x-original-to': ['archive@example.net'] });
  });

  it('parseMany returns results in order', async () => {
    const p = pool({ size: 2, maxInFlight: 3 });
    const results = await p.parseMany(Array.from({ length: 25 }, (_, i) => message5k(i)));
    expect(results.map((r) => r.subject)).toEqual(Array.from({ length: 25 }, (_, i) => `Re: Quarterly report – n°${i}`));
  });

  it('times out a message that takes too long: fallback result, worker replaced, others unaffected', async () => {
    const p = pool({ size: 1, timeoutMs: 250 });
    expect((await p.parse(message5k(1))).status).toBe('ok'); // worker up
    const [huge, small] = await Promise.all([p.parse(hugeMessage(32)), p.parse(message5k(2))]);
    expect(huge.status).toBe('partial');
    expect(huge.defects).toContain('parse-timeout');
    expect(huge.subject).toBe('huge');
    expect(huge.messageId).toBe('huge@example.com');
    expect(huge.from).toEqual([{ address: 'big@example.com', name: 'Big' }]);
    expect(small.status).toBe('ok');
    const after = await p.parse(message5k(3));
    expect(after.status).toBe('ok');
    expect(after.subject).toBe('Re: Quarterly report – n°3');
  });

  it('closes after in-flight work finishes; parse afterwards rejects', async () => {
    const p = pool({ size: 1 });
    const pending = p.parse(message5k(7));
    await p.close();
    expect((await pending).status).toBe('ok');
    await expect(p.parse(message5k(8))).rejects.toThrow(/closed/);
  });
});

describe('parse pool failure handling (stand-in worker)', () => {
  it('a crashed worker is replaced and its message gets the fallback result', async () => {
    const p = pool({ size: 1, startWorker: stubWorker() });
    const crash = await p.parse(Buffer.from('Subject: boom\r\nFrom: a@b.example\r\n\r\nCRASH'));
    expect(crash.status).toBe('partial');
    expect(crash.subject).toBe('boom');
    expect(crash.defects).toContain('parse-crash');
    const thrown = await p.parse(Buffer.from('Subject: t\r\n\r\nTHROW'));
    expect(thrown.defects).toContain('parse-crash');
    expect((await p.parse(Buffer.from('Subject: fine\r\n\r\nok'))).subject).toBe('stub:Subject: fine');
  });

  it('when a worker dies with several messages in flight, each is retried alone: only the culprit falls back', async () => {
    const p = pool({ size: 1, startWorker: stubWorker(), timeoutMs: 300 });
    const raws = ['Subject: a\r\n\r\nA', 'Subject: c\r\n\r\nCRASH', 'Subject: b\r\n\r\nB', 'Subject: h\r\n\r\nHANG', 'Subject: d\r\n\r\nD'];
    const results = await Promise.all(raws.map((r) => p.parse(Buffer.from(r))));
    expect(results.map((r) => [r.subject, r.status, r.defects.filter((d) => d.startsWith('parse-'))])).toEqual([
      ['stub:Subject: a', 'ok', []],
      ['c', 'partial', ['parse-crash']],
      ['stub:Subject: b', 'ok', []],
      ['h', 'partial', ['parse-timeout']],
      ['stub:Subject: d', 'ok', []],
    ]);
    expect((await p.parse(Buffer.from('Subject: e\r\n\r\nE'))).status).toBe('ok');
  });

  it('a hung worker is terminated after the timeout', async () => {
    const p = pool({ size: 2, startWorker: stubWorker(), timeoutMs: 100 });
    const t = Date.now();
    const r = await p.parse(Buffer.from('Subject: hang\r\nMessage-ID: <h@x>\r\n\r\nHANG'));
    expect(Date.now() - t).toBeLessThan(5000);
    expect(r).toMatchObject({ status: 'partial', subject: 'hang', messageId: 'h@x' });
    expect(r.defects[0]).toBe('parse-timeout');
  });

  it('falls back to parsing on the calling thread when workers cannot start', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const p = pool({ size: 2, startWorker: stubWorker('fail-to-start') });
      const r = await p.parse(message5k(4));
      expect(r.status).toBe('ok');
      expect(r.subject).toBe('Re: Quarterly report – n°4');
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.some((w) => /workers fail to start/.test(w))).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('parse pool: degenerate settings', () => {
  it('parses on the calling thread when a worker cannot even be constructed', async () => {
    const onWarning = (): void => undefined;
    process.on('warning', onWarning);
    try {
      const p = pool({
        size: 2,
        startWorker: () => {
          throw new Error('no worker for you');
        },
      });
      expect((await p.parse(message5k(6))).subject).toBe('Re: Quarterly report – n°6');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('timeoutMs 0 means no timeout', async () => {
    const p = pool({ size: 1, timeoutMs: 0, startWorker: stubWorker() });
    expect((await p.parse(Buffer.from('Subject: x\r\n\r\nok'))).status).toBe('ok');
  });
});

describe('parse pool of size 0 (calling thread)', () => {
  it('parses in-thread, same results', async () => {
    const p = pool({ size: 0 });
    const raw = message5k(5);
    expect(await p.parse(raw)).toEqual(await parseMail(raw, base));
    expect((await p.parseMany([message5k(1), message5k(2)])).map((r) => r.subject)).toEqual(['Re: Quarterly report – n°1', 'Re: Quarterly report – n°2']);
    await p.close();
    await expect(p.parse(raw)).rejects.toThrow(/closed/);
  });
});

/**
 * Throughput, skipped unless SPINDLE_BENCH=1:
 *   SPINDLE_BENCH=1 npx vitest run test/ingest/parse-pool.test.ts -t throughput
 */
describe.skipIf(!process.env.SPINDLE_BENCH)('throughput', () => {
  const N5 = Number(process.env.SPINDLE_BENCH_N ?? 6000);
  const N100 = Math.ceil(N5 / 10);
  const m5 = Array.from({ length: 64 }, (_, i) => message5k(i));
  const m100 = Array.from({ length: 8 }, (_, i) => message100k(i));
  const rows: string[] = [];

  async function measure(label: string, inputs: Buffer[], n: number, concurrency: number, fn: (b: Buffer) => Promise<unknown>): Promise<void> {
    let next = 0;
    const run = async (count: number): Promise<void> => {
      next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) await fn(inputs[next++ % inputs.length] as Buffer);
        }),
      );
    };
    await run(Math.min(n, 1000)); // warm-up (JIT, workers)
    const t = performance.now();
    await run(n);
    const rate = (n / (performance.now() - t)) * 1000;
    rows.push(`${label.padEnd(52)} ${rate.toFixed(0).padStart(6)} msg/s`);
  }

  it('throughput of in-thread parsing and of the pool', { timeout: 600_000 }, async () => {
    const simpleOpts = { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, keepCidLinks: true, checksumAlgo: 'sha256' } as const;
    for (const [name, inputs, n] of [
      ['5 KB', m5, N5],
      ['100 KB', m100, N100],
    ] as const) {
      await measure(`${name} simpleParser defaults, sequential`, inputs, n, 1, (b) => simpleParser(b));
      await measure(`${name} simpleParser fast options, sequential`, inputs, n, 1, (b) => simpleParser(b, simpleOpts));
      await measure(`${name} parseMail in-thread, sequential`, inputs, n, 1, (b) => parseMail(b, base));
      await measure(`${name} parseMail in-thread, 16 concurrent`, inputs, n, 16, (b) => parseMail(b, base));
      for (const size of [1, 2]) {
        for (const maxInFlight of [1, 16]) {
          const p = pool({ size, maxInFlight });
          await measure(`${name} pool size ${size}, maxInFlight ${maxInFlight}, 128 concurrent`, inputs, n, 128, (b) => p.parse(b));
          await p.close();
        }
      }
    }
    console.log(rows.join('\n'));
  });
});
