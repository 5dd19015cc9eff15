import { Rng } from './prng.js';

/**
 * Deterministic, real-world-shaped test mail for the ingest benchmark.
 *
 * - small (~5 KB): Return-Path, a Received chain of 3-5 hops, DKIM-Signature, Authentication-Results,
 *   Amavis headers, From/To/Cc/Subject/Date/Message-ID (and In-Reply-To/References for replies),
 *   multipart/alternative with a quoted-printable text part and an HTML part.
 * - large (~100 KB): the same headers, multipart/mixed holding the alternative part plus a base64
 *   application/pdf attachment of incompressible (random, PDF-framed) bytes.
 *
 * Every message has a unique Message-ID and a unique reference word (`ref` + 10 base-36 chars) in
 * its body, so that a search can find exactly that message. Lines end in CRLF; a quoted-printable
 * soft break can start a line with '.', so the client dot-stuffs before sending.
 */
export type CorpusSize = 'small' | 'large';

export interface BenchMessage {
  raw: Buffer;
  mailFrom: string;
  /** Unique word in the body, for the search check. */
  refWord: string;
  messageId: string;
}

const WORDS = (
  'the of and to in is that for it as with was on be at by this have from or one had not but what all were when we there can an ' +
  'your which their said if do will each about how up out them then she many some so these would other into has more her two like ' +
  'him see time could no make than first been its who now people my made over did down only way find use may water long little very ' +
  'after words called just where most know get through back much before go good new write our used me man too any day same right look ' +
  'think also around another came come work three must because does part even place well such here take why help put different away ' +
  'again off went old number great tell men say small every found still between name should home big give air line set own under read ' +
  'last never us left end along while might next sound below saw something thought both few those always show large often together asked ' +
  'house world going want school important until form food keep children feet land side without boy once animal life enough took ' +
  'budget forecast invoice quarterly report meeting agenda schedule contract renewal proposal customer supplier delivery shipment ' +
  'payment overdue reminder approval review draft final version attached please regards thanks update project milestone deadline ' +
  'release deployment server outage incident postmortem roadmap planning hiring interview candidate onboarding training compliance ' +
  'audit policy retention legal hold privacy security password certificate renewal license procurement purchase order warehouse ' +
  'inventory logistics freight customs pricing discount quote estimate revenue margin expenses travel hotel flight conference workshop ' +
  'webinar newsletter subscription marketing campaign launch feedback survey support ticket escalation resolution billing account ' +
  'statement balance transfer payroll benefits vacation holiday office relocation facilities maintenance network firewall backup ' +
  'migration database storage archive mailbox calendar invitation minutes summary action items follow owner status blocked risk ' +
  'mitigation dependency vendor partner agreement signature notarized amendment clause liability warranty indemnity termination'
).split(' ');

const UNICODE_WORDS = ['Grüße', 'Straße', 'café', 'naïve', 'résumé', 'Zürich', 'München', 'São', 'Málaga', 'Kraków', 'façade', 'jalapeño'];

const FIRST = ['Alice', 'Bob', 'Carol', 'David', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia',
  'Peggy', 'Rupert', 'Sybil', 'Trent', 'Victor', 'Walter', 'Yasmin', 'Zoe', 'Liam', 'Noah', 'Emma', 'Ava', 'Sophia', 'Mia', 'Lucas',
  'Mateo', 'Elena', 'Hugo', 'Ingrid', 'Jonas', 'Klara', 'Leon', 'Marta', 'Nils', 'Oskar', 'Paula', 'Quentin', 'Rosa', 'Sven', 'Tariq',
  'Uma', 'Vera', 'Wen', 'Xavier', 'Yuki', 'Zainab', 'Amara', 'Bjorn', 'Chen', 'Dara', 'Emil', 'Farah', 'Goran', 'Hana', 'Ilse'];
const LAST = ['Smith', 'Jones', 'Miller', 'Garcia', 'Müller', 'Schmidt', 'Rossi', 'Dubois', 'Novak', 'Kowalski', 'Johansson', 'Nielsen',
  'Tanaka', 'Kim', 'Nguyen', 'Patel', 'Singh', 'Okafor', 'Mensah', 'Silva', 'Santos', 'Fernández', 'López', 'Martin', 'Bernard',
  'Weber', 'Wagner', 'Becker', 'Hoffmann', 'Keller', 'Brown', 'Taylor', 'Wilson', 'Evans', 'Walker', 'Hughes', 'Green', 'Baker',
  'Clarke', 'Wright', 'Hall', 'Young', 'King', 'Scott', 'Adams', 'Nelson', 'Carter', 'Mitchell', 'Roberts', 'Turner'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'acme-corp.example', 'northwind.example', 'contoso.example',
  'fabrikam.example', 'globex.example', 'initech.example', 'umbrella.example', 'hooli.example', 'stark-industries.example',
  'wayne-enterprises.example', 'tyrell.example', 'cyberdyne.example', 'soylent.example', 'aperture.example', 'blackmesa.example',
  'vandelay.example', 'dunder-mifflin.example', 'piedpiper.example', 'oscorp.example', 'wonka.example', 'gringotts.example'];
const MAILERS = ['Microsoft Outlook 16.0', 'Apple Mail (2.3774.500.171.1.1)', 'Mozilla Thunderbird 115.9.0', 'Roundcube Webmail/1.6.6',
  'SOGo/5.10.0', 'Evolution 3.50.4', 'Mutt/2.2.12 (2023-09-09)', 'K-9 Mail for Android'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const SUBJECT_PREFIX = ['', '', '', 'Re: ', 'Re: ', 'Fwd: ', 'RE: ', 'AW: ', '[ext] '];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

interface Person {
  name: string;
  address: string;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 date in the given UTC offset (minutes). */
function rfc5322Date(ms: number, offsetMin: number): string {
  const d = new Date(ms + offsetMin * 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const off = Math.abs(offsetMin);
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${sign}${pad2(Math.floor(off / 60))}${pad2(off % 60)}`;
}

function b64chars(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += B64[rng.u32() & 63];
  return s;
}

/** RFC 2047 encoded-word for a display name with non-ASCII characters, else a quoted string when needed. */
function displayName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(name)) return `=?UTF-8?B?${Buffer.from(name, 'utf8').toString('base64')}?=`;
  return /[^A-Za-z0-9 ]/.test(name) ? `"${name}"` : name;
}

const mailbox = (p: Person): string => `${displayName(p.name)} <${p.address}>`;

/** Quoted-printable (RFC 2045) of UTF-8 text whose lines end in \n; output lines end in CRLF. */
function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let enc = '';
    for (const byte of Buffer.from(line, 'utf8')) {
      if ((byte >= 33 && byte <= 126 && byte !== 61) || byte === 32) enc += String.fromCharCode(byte);
      else enc += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    if (enc.endsWith(' ')) enc = enc.slice(0, -1) + '=20';
    // Soft line breaks at <= 76 characters, never inside an =XX escape.
    while (enc.length > 76) {
      let cut = 75;
      const eq = enc.lastIndexOf('=', cut - 1);
      if (eq >= cut - 2) cut = eq;
      out.push(enc.slice(0, cut) + '=');
      enc = enc.slice(cut);
    }
    out.push(enc);
  }
  return out.join('\r\n');
}

const htmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function wrapBase64(b64: string): string {
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join('\r\n');
}

export interface CorpusOptions {
  count: number;
  size: CorpusSize;
  seed?: number;
  /** Base time (ms) of the first message's Date; later messages are later. */
  startMs?: number;
}

export function generateCorpus(opts: CorpusOptions): BenchMessage[] {
  const rng = new Rng(opts.seed ?? 0x5eed_2024);
  const people: Person[] = [];
  for (let i = 0; i < 400; i++) {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const local = `${first}.${last}`.toLowerCase().normalize('NFD').replace(/[^a-z.]/g, '');
    people.push({ name: `${first} ${last}`, address: `${local}${rng.chance(0.2) ? rng.int(1, 99) : ''}@${rng.pick(DOMAINS)}` });
  }
  const threads: Array<{ subject: string; msgIds: string[] }> = [];
  const start = opts.startMs ?? Date.UTC(2024, 0, 2, 7, 0, 0);
  let t = start;
  const out: BenchMessage[] = [];
  for (let i = 0; i < opts.count; i++) {
    t += rng.int(1_000, 120_000);
    out.push(generateOne(rng, i, t, people, threads, opts.size));
  }
  return out;
}

function sentence(rng: Rng, min: number, max: number): string {
  const n = rng.int(min, max);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(rng.chance(0.01) ? rng.pick(UNICODE_WORDS) : rng.pick(WORDS));
  const s = words.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1) + rng.pick(['.', '.', '.', '?', '!']);
}

function paragraph(rng: Rng): string {
  const n = rng.int(2, 5);
  const s: string[] = [];
  for (let i = 0; i < n; i++) s.push(sentence(rng, 5, 15));
  return s.join(' ');
}

/** Wraps text at ~72 columns on spaces. */
function wrap(text: string, width = 72): string {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

function generateOne(rng: Rng, index: number, ms: number, people: Person[], threads: Array<{ subject: string; msgIds: string[] }>, size: CorpusSize): BenchMessage {
  const from = rng.pick(people);
  const fromDomain = from.address.split('@')[1]!;
  const to: Person[] = [];
  const nTo = rng.int(1, 3);
  for (let i = 0; i < nTo; i++) to.push(rng.pick(people));
  const cc: Person[] = [];
  if (rng.chance(0.35)) for (let i = rng.int(1, 3); i > 0; i--) cc.push(rng.pick(people));
  const refWord = `ref${rng.token(10)}`;
  const msgId = `<${ms.toString(36)}.${index.toString(36)}.${rng.hex(12)}@${fromDomain}>`;
  const offset = rng.pick([0, 60, 60, 120, -300, -240, 330, 540, -420]);

  // Subject: sometimes a reply in an existing thread.
  let subject: string;
  let inReplyTo: string | null = null;
  let references: string[] = [];
  const thread = threads.length > 0 && rng.chance(0.3) ? rng.pick(threads) : null;
  if (thread) {
    subject = `Re: ${thread.subject}`;
    inReplyTo = thread.msgIds.at(-1)!;
    references = thread.msgIds.slice(-6);
    thread.msgIds.push(msgId);
  } else {
    const words: string[] = [];
    for (let i = rng.int(3, 8); i > 0; i--) words.push(rng.pick(WORDS));
    subject = words.join(' ');
    subject = rng.pick(SUBJECT_PREFIX) + subject.charAt(0).toUpperCase() + subject.slice(1);
    if (rng.chance(0.2)) subject += ` ${rng.pick(UNICODE_WORDS)}`;
    if (rng.chance(0.3)) subject += ` (#${rng.int(1000, 99999)})`;
    if (threads.length < 500) threads.push({ subject: subject.replace(/^(Re|RE|AW|Fwd): /, ''), msgIds: [msgId] });
    else threads[rng.int(0, threads.length - 1)] = { subject: subject.replace(/^(Re|RE|AW|Fwd): /, ''), msgIds: [msgId] };
  }
  const encSubject = /[^\x20-\x7e]/.test(subject) ? `=?UTF-8?Q?${quotedPrintable(subject).replace(/=\r\n/g, '').replace(/ /g, '_').replace(/\?/g, '=3F')}?=` : subject;

  // Body text.
  const greeting = `${rng.pick(['Hi', 'Hello', 'Dear', 'Hey', 'Good morning'])} ${to[0]!.name.split(' ')[0]},`;
  const paras: string[] = [];
  const nPara = size === 'small' ? rng.int(1, 4) : rng.int(2, 4);
  for (let i = 0; i < nPara; i++) paras.push(paragraph(rng));
  paras.splice(rng.int(0, paras.length), 0, `Reference for this thread: ${refWord}.`);
  const closing = `${rng.pick(['Best regards', 'Kind regards', 'Thanks', 'Cheers', 'Viele Grüße'])},\n${from.name}`;
  const signature = `--\n${from.name}\n${rng.pick(['Finance', 'Operations', 'Engineering', 'Legal', 'Sales', 'Support'])} | ${fromDomain}\nPhone +1 555 ${rng.int(100, 999)} ${rng.int(1000, 9999)}`;
  const plain = [greeting, ...paras.map((p) => wrap(p)), closing, signature].join('\n\n') + '\n';
  const html =
    `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style type="text/css">body{font-family:Calibri,Arial,sans-serif;font-size:11pt;color:#1f1f1f}p{margin:0 0 12px 0}.sig{color:#666666;font-size:9pt}</style></head>\n` +
    `<body lang="EN-US" link="#0563C1" vlink="#954F72"><div class="WordSection1">\n<p class="MsoNormal">${htmlEscape(greeting)}</p>\n` +
    paras.map((p) => `<p class="MsoNormal"><span style="font-size:11.0pt">${htmlEscape(p)}</span></p>\n`).join('') +
    `<p class="MsoNormal">${htmlEscape(closing).replace('\n', '<br>\n')}</p>\n<div class="sig">${htmlEscape(signature).replace(/\n/g, '<br>\n')}</div>\n</div></body></html>\n`;

  // Headers, top (newest hop) first.
  const dateHdr = rfc5322Date(ms, offset);
  const hops: string[] = [];
  let hopMs = ms + rng.int(500, 3000);
  const nHops = rng.int(3, 5);
  const archiveQid = rng.token(12).toUpperCase();
  hops.push(`Received: from mx${rng.int(1, 3)}.mail.archive.example (localhost [127.0.0.1])\r\n\tby archive.mail.archive.example (Postfix) with ESMTP id 4${archiveQid}\r\n\tfor <archive@localhost>; ${rfc5322Date(hopMs + 200, 0)}`);
  for (let h = 1; h < nHops; h++) {
    const host = `${rng.pick(['mail', 'smtp', 'mx', 'out', 'relay', 'mta'])}${rng.int(1, 40)}.${h === nHops - 1 ? fromDomain : rng.pick(DOMAINS)}`;
    const ip = `${rng.pick(['192.0.2', '198.51.100', '203.0.113'])}.${rng.int(1, 254)}`;
    hopMs -= rng.int(100, 2000);
    hops.push(`Received: from ${host} (${host} [${ip}])\r\n\tby ${rng.pick(['mx1', 'mx2', 'smtp-in', 'edge'])}.${rng.pick(DOMAINS)} (Postfix) with ESMTPS id ${rng.token(10).toUpperCase()}\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits))\r\n\t; ${rfc5322Date(hopMs, 0)}`);
  }
  const dkimB = b64chars(rng, 344);
  const dkim = `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${fromDomain};\r\n\ts=${rng.pick(['selector1', 'google', 's2048', 'dkim', 'mail'])}; t=${Math.floor(ms / 1000)}; x=${Math.floor(ms / 1000) + 1209600};\r\n` +
    `\tbh=${b64chars(rng, 43)}=;\r\n\th=From:To:Cc:Subject:Date:Message-ID:MIME-Version:Content-Type:In-Reply-To:References;\r\n` +
    `\tb=${dkimB.slice(0, 70)}\r\n\t ${dkimB.slice(70, 140)}\r\n\t ${dkimB.slice(140, 210)}\r\n\t ${dkimB.slice(210, 280)}\r\n\t ${dkimB.slice(280)}`;
  const auth = `Authentication-Results: mail.archive.example;\r\n\tdkim=pass (2048-bit key) header.d=${fromDomain} header.i=@${fromDomain} header.b=${dkimB.slice(0, 8)};\r\n\tspf=pass (mail.archive.example: domain of ${from.address} designates 203.0.113.${rng.int(1, 254)} as permitted sender) smtp.mailfrom=${from.address};\r\n\tdmarc=pass (p=quarantine dis=none) header.from=${fromDomain}`;
  const boundaryAlt = `----=_Part_${rng.int(10000, 99999)}_${rng.int(100000000, 999999999)}.${ms}`;
  const boundaryMixed = `----=_NextPart_${rng.hex(3)}_${rng.hex(4)}_${rng.hex(8)}.${rng.hex(8)}`;

  const headers: string[] = [
    `Return-Path: <${from.address}>`,
    'X-Original-To: archive@localhost',
    'Delivered-To: archive@localhost',
    ...hops,
    'X-Virus-Scanned: Debian amavis at mail.archive.example',
    `X-Spam-Flag: NO\r\nX-Spam-Score: ${(rng.float() * 4 - 2).toFixed(3)}\r\nX-Spam-Level: `,
    auth,
    dkim,
    `From: ${mailbox(from)}`,
    `To: ${to.map(mailbox).join(',\r\n\t')}`,
    ...(cc.length > 0 ? [`Cc: ${cc.map(mailbox).join(',\r\n\t')}`] : []),
    `Subject: ${encSubject}`,
    `Date: ${dateHdr}`,
    `Message-ID: ${msgId}`,
    ...(inReplyTo ? [`In-Reply-To: ${inReplyTo}`, `References: ${references.join('\r\n\t')}`] : []),
    rng.chance(0.5) ? `X-Mailer: ${rng.pick(MAILERS)}` : `User-Agent: ${rng.pick(MAILERS)}`,
    ...(rng.chance(0.25) ? [`List-Unsubscribe: <mailto:unsubscribe-${rng.token(16)}@lists.${fromDomain}>, <https://lists.${fromDomain}/u/${rng.token(24)}>`, 'List-Unsubscribe-Post: List-Unsubscribe=One-Click'] : []),
    'MIME-Version: 1.0',
  ];

  const alternative =
    `--${boundaryAlt}\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n` +
    `${quotedPrintable(plain)}\r\n` +
    `--${boundaryAlt}\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n` +
    `${quotedPrintable(html)}\r\n` +
    `--${boundaryAlt}--\r\n`;

  let body: string;
  if (size === 'small') {
    headers.push(`Content-Type: multipart/alternative;\r\n\tboundary="${boundaryAlt}"`);
    body = alternative;
  } else {
    headers.push(`Content-Type: multipart/mixed;\r\n\tboundary="${boundaryMixed}"`);
    const fileName = `${rng.pick(['Invoice', 'Contract', 'Report', 'Statement', 'Quote', 'Minutes', 'Scan'])}-${new Date(ms).getUTCFullYear()}-${String(rng.int(1, 9999)).padStart(4, '0')}.pdf`;
    const pdf = pdfLike(rng, rng.int(60_000, 84_000));
    body =
      `This is a multi-part message in MIME format.\r\n\r\n` +
      `--${boundaryMixed}\r\nContent-Type: multipart/alternative;\r\n\tboundary="${boundaryAlt}"\r\n\r\n${alternative}\r\n` +
      `--${boundaryMixed}\r\nContent-Type: application/pdf;\r\n\tname="${fileName}"\r\nContent-Description: ${fileName}\r\n` +
      `Content-Disposition: attachment;\r\n\tfilename="${fileName}"; size=${pdf.length};\r\n\tcreation-date="${dateHdr}"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${wrapBase64(pdf.toString('base64'))}\r\n` +
      `--${boundaryMixed}--\r\n`;
  }
  const raw = Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`, 'utf8');
  return { raw, mailFrom: from.address, refWord, messageId: msgId };
}

/** A PDF-shaped file: a real header and trailer around incompressible (already-compressed-like) bytes. */
function pdfLike(rng: Rng, size: number): Buffer {
  const head = Buffer.from(`%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n4 0 obj\n<< /Length ${size} /Filter /FlateDecode >>\nstream\n`, 'latin1');
  const tail = Buffer.from('\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1');
  const mid = Buffer.allocUnsafe(Math.max(0, size - head.length - tail.length));
  rng.fill(mid);
  return Buffer.concat([head, mid, tail]);
}
