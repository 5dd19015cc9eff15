import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArchiveAddressMatcher } from '../../src/journal/archive-address.js';
import {
  extractSection,
  postfixConfig,
  postfixConfigParts,
  type PostfixJournalMode,
} from '../../src/journal/postfix-config.js';

const base = { archiveDomain: 'archive.example', smtpHost: '127.0.0.1', smtpPort: 2525 };

describe('postfixConfigParts', () => {
  it('envelope mode (default): bcc maps, transport, limits', () => {
    const p = postfixConfigParts(base);
    expect(p.mode).toBe('envelope');
    expect(p.mainCf).toEqual([
      'recipient_bcc_maps = regexp:/etc/postfix/spindle_rcpt',
      'sender_bcc_maps = regexp:/etc/postfix/spindle_from',
      'transport_maps = inline:{archive.example=journal:[127.0.0.1]:2525}',
      'journal_destination_recipient_limit = 1000',
      'journal_destination_concurrency_limit = 10',
    ]);
    expect(p.rcptMap).toBe(
      'if !/@archive\\.example$/\n/^(.+)@(.+)$/    journal+rcpt.${1}=${2}@archive.example\nendif\n',
    );
    expect(p.fromMap).toBe(
      'if !/@archive\\.example$/\n/^(.+)@(.+)$/    journal+from.${1}=${2}@archive.example\nendif\n',
    );
    expect(p.masterCf[0]).toMatch(/^journal\s+unix\s+-\s+-\s+n\s+-\s+-\s+smtp$/);
    expect(p.masterCf).toContain('  -o smtp_line_length_limit=0');
    expect(p.masterCf).toContain('  -o smtp_tls_security_level=none');
    expect(p.commands).toContain('postfix reload');
    expect(p.spindleArchiveAddresses).toBe('archive@archive.example');
    expect(p.listener).toBe('127.0.0.1:2525');
  });

  it('always_bcc mode: the always_bcc line plus the transport, no maps', () => {
    const p = postfixConfigParts({ ...base, mode: 'always_bcc' });
    expect(p.mainCf).toEqual([
      'always_bcc = archive@archive.example',
      'transport_maps = inline:{archive.example=journal:[127.0.0.1]:2525}',
      'journal_destination_concurrency_limit = 10',
    ]);
    expect(p.rcptMap).toBeNull();
    expect(p.fromMap).toBeNull();
  });

  it('both: maps and always_bcc', () => {
    const p = postfixConfigParts({ ...base, mode: 'both' });
    expect(p.mainCf).toContain('always_bcc = archive@archive.example');
    expect(p.mainCf).toContain('recipient_bcc_maps = regexp:/etc/postfix/spindle_rcpt');
  });

  it('formats next hops: IPv6 with the ipv6: prefix, host names bracketed', () => {
    const v6 = postfixConfigParts({ ...base, smtpHost: '::1' });
    expect(v6.transport).toBe('journal:[ipv6:::1]:2525');
    expect(v6.listener).toBe('[::1]:2525');
    expect(v6.masterCf).toContain('  -o smtp_tls_security_level=none');
    expect(postfixConfigParts({ ...base, smtpHost: '[ipv6:2001:db8::5]' }).transport).toBe(
      'journal:[ipv6:2001:db8::5]:2525',
    );
    // Spindle listening on all interfaces is reached over loopback
    expect(postfixConfigParts({ ...base, smtpHost: '0.0.0.0' }).transport).toBe('journal:[127.0.0.1]:2525');
    expect(postfixConfigParts({ ...base, smtpHost: '::' }).transport).toBe('journal:[ipv6:::1]:2525');
    const remote = postfixConfigParts({ ...base, smtpHost: 'spindle.internal', smtpPort: 25 });
    expect(remote.transport).toBe('journal:[spindle.internal]:25');
    expect(remote.masterCf.some((l) => l.includes('smtp_tls_security_level'))).toBe(false);
  });

  it('normalizes the archive domain', () => {
    const p = postfixConfigParts({ ...base, archiveDomain: '@Archive.Example.' });
    expect(p.archiveDomain).toBe('archive.example');
    expect(postfixConfigParts({ ...base, archiveDomain: 'bücher.example' }).archiveDomain).toBe(
      'xn--bcher-kva.example',
    );
  });

  it('rejects bad options', () => {
    expect(() => postfixConfigParts({ ...base, smtpPort: 0 })).toThrow(/port/);
    expect(() => postfixConfigParts({ ...base, smtpPort: 65536 })).toThrow(/port/);
    expect(() => postfixConfigParts({ ...base, smtpPort: 25.5 })).toThrow(/port/);
    expect(() => postfixConfigParts({ ...base, smtpHost: 'a b' })).toThrow(/host/);
    expect(() => postfixConfigParts({ ...base, smtpHost: '' })).toThrow(/host/);
    expect(() => postfixConfigParts({ ...base, archiveDomain: 'a b.example' })).toThrow(/domain/);
    expect(() => postfixConfigParts({ ...base, archiveDomain: 'x@archive.example' })).toThrow(/domain/);
    expect(() => postfixConfigParts({ ...base, archiveDomain: '' })).toThrow(/domain/);
    expect(() =>
      postfixConfigParts({ ...base, mode: 'journal' as unknown as PostfixJournalMode }),
    ).toThrow(/mode/);
  });
});

describe('postfixConfig text', () => {
  const text = postfixConfig(base);

  it('has every section, and its lines are exactly the parts', () => {
    const p = postfixConfigParts(base);
    expect(extractSection(text, '/etc/postfix/spindle_rcpt')).toEqual(p.rcptMap!.trimEnd().split('\n'));
    expect(extractSection(text, '/etc/postfix/spindle_from')).toEqual(p.fromMap!.trimEnd().split('\n'));
    expect(extractSection(text, '/etc/postfix/main.cf')).toEqual(p.mainCf);
    expect(extractSection(text, '/etc/postfix/master.cf')).toEqual(p.masterCf);
    expect(extractSection(text, 'Apply')).toEqual(p.commands);
  });

  it('explains why envelope mode, iRedMail specifics and prepending', () => {
    expect(text).toMatch(/Bcc recipients/);
    expect(text).toMatch(/always_bcc/);
    expect(text).toMatch(/FIRST/);
    expect(text).toMatch(/proxy:mysql:\/etc\/postfix\/mysql\/transport_maps_user\.cf/);
    expect(text).toMatch(/Amavisd/);
    expect(text).toMatch(/no_address_mappings/);
    expect(text).toMatch(/10028/);
    expect(text).toMatch(/SPINDLE_ARCHIVE_ADDRESSES=archive@archive\.example/);
    expect(text).toMatch(/postmap -q archive\.example/);
    expect(text).not.toMatch(/WARNING/);
  });

  it('every non-section line is a comment or blank (no stray text in pasted files)', () => {
    // Lines outside sections must be comments, so nothing slips into a file by accident.
    const lines = text.split('\n');
    let inSection = false;
    for (const line of lines) {
      if (line.startsWith('# ==== ')) inSection = true;
      else if (line === '') inSection = false;
      else if (!inSection) expect(line.startsWith('#')).toBe(true);
    }
  });

  it('warns when the archive domain is localhost', () => {
    expect(postfixConfig({ ...base, archiveDomain: 'localhost' })).toMatch(/WARNING: localhost/);
  });

  it('always_bcc text says what is lost and has no map sections', () => {
    const t = postfixConfig({ ...base, mode: 'always_bcc' });
    expect(t).toMatch(/Bcc\s+(#\s+)?recipients/);
    expect(extractSection(t, '/etc/postfix/spindle_rcpt')).toEqual([]);
    expect(extractSection(t, '/etc/postfix/main.cf')).toContain('always_bcc = archive@archive.example');
  });
});

// ---------------------------------------------------------------------------------------------
// Checks against the real Postfix tools.
// ---------------------------------------------------------------------------------------------

function findTool(name: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}
const POSTCONF = findTool('postconf');
const POSTMAP = findTool('postmap');
if (!POSTCONF || !POSTMAP) {
  console.warn(
    '[test/journal/postfix-config] postconf/postmap not found: skipping the checks against real ' +
      'Postfix (install the Debian package "postfix" to run them).',
  );
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Writes a file dated a minute back: Postfix waits ~2 s before reading a configuration file
 * modified within the last second or two (it may still be being written).
 */
function writeOld(path: string, content: string): void {
  writeFileSync(path, content);
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
}

/** A config dir with a minimal main.cf plus `mainExtra`, and master.cf plus `masterExtra`. */
function configDir(mainExtra: string[], masterExtra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-postconf-'));
  dirs.push(dir);
  const main = [
    'compatibility_level = 3.6',
    'myhostname = mx.example.com',
    'mydestination = $myhostname, localhost',
    'inet_interfaces = loopback-only',
    ...mainExtra,
  ];
  writeOld(join(dir, 'main.cf'), main.join('\n') + '\n');
  const systemMaster = '/etc/postfix/master.cf';
  const master = existsSync(systemMaster)
    ? readFileSync(systemMaster, 'utf8')
    : 'smtp      unix  -       -       n       -       -       smtp\n';
  writeOld(join(dir, 'master.cf'), master.trimEnd() + '\n' + masterExtra.join('\n') + '\n');
  return dir;
}

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  // postconf warns about the missing NIS domain on some hosts: not ours
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l.trim() && !/dict_nis_init/.test(l))
    .join('\n');
  return { status: r.status, stdout: r.stdout, stderr };
}

describe.skipIf(!POSTCONF || !POSTMAP)('generated configuration against real Postfix', () => {
  for (const mode of ['envelope', 'always_bcc', 'both'] as const) {
    it(`postconf accepts the ${mode} main.cf and master.cf lines without warnings`, () => {
      const text = postfixConfig({ ...base, mode });
      const mainLines = extractSection(text, '/etc/postfix/main.cf');
      const masterLines = extractSection(text, '/etc/postfix/master.cf');
      const dir = configDir(mainLines, masterLines);

      const n = run(POSTCONF!, ['-c', dir, '-n']);
      expect(n.stderr).toBe('');
      expect(n.status).toBe(0);
      for (const line of mainLines) expect(n.stdout).toContain(line);

      // parameters as Postfix itself reads them
      const h = run(POSTCONF!, ['-c', dir, '-h', 'transport_maps', 'journal_destination_concurrency_limit']);
      expect(h.stdout.split('\n').slice(0, 2)).toEqual([
        'inline:{archive.example=journal:[127.0.0.1]:2525}',
        '10',
      ]);

      const m = run(POSTCONF!, ['-c', dir, '-M', 'journal/unix']);
      expect(m.stderr).toBe('');
      expect(m.stdout).toMatch(/^journal\s+unix\s+-\s+-\s+n\s+-\s+-\s+smtp/);
      const params = run(POSTCONF!, ['-c', dir, '-P', 'journal/unix']);
      expect(params.stderr).toBe('');
      expect(params.stdout).toContain('journal/unix/smtp_line_length_limit = 0');
      expect(params.stdout).toContain('journal/unix/disable_mime_output_conversion = yes');
    });
  }

  it('postconf would flag a mistake (the check above is not vacuous)', () => {
    const dir = configDir(['journal_destination_recipient_limit = 1000'], []); // no journal service
    expect(run(POSTCONF!, ['-c', dir, '-n']).stderr).toMatch(/unused parameter: journal_destination_recipient_limit/);
  });

  it('the documented iRedMail merge (Spindle first, multi-line) parses as intended', () => {
    const text = postfixConfig(base);
    const lines = text.split('\n');
    const start = lines.findIndex((l) => /the result looks like this/.test(l));
    const example: string[] = [];
    for (const l of lines.slice(start + 1)) {
      const m = /^#   (\S.*|\s+\S.*)$/.exec(l);
      if (!m) break;
      example.push(m[1]!);
    }
    expect(example.length).toBeGreaterThanOrEqual(12);
    const dir = configDir(
      [...example, 'journal_destination_recipient_limit = 1000'],
      extractSection(text, '/etc/postfix/master.cf'),
    );
    const h = run(POSTCONF!, ['-c', dir, '-h', 'transport_maps', 'recipient_bcc_maps', 'sender_bcc_maps']);
    // the iRedMail SQL lookup files do not exist here; anything else would be a real warning
    expect(h.stderr.split('\n').filter((l) => l && !/open "mysql" configuration/.test(l))).toEqual([]);
    const [transport, rcptMaps, fromMaps] = h.stdout.split('\n');
    expect(transport).toMatch(/^inline:\{archive\.example=journal:\[127\.0\.0\.1\]:2525\} proxy:mysql:/);
    expect(rcptMaps).toMatch(/^regexp:\/etc\/postfix\/spindle_rcpt proxy:mysql:/);
    expect(fromMaps).toMatch(/^regexp:\/etc\/postfix\/spindle_from proxy:mysql:/);
  });

  describe('the regexp maps, queried with postmap', () => {
    const p = postfixConfigParts(base);
    const matcher = createArchiveAddressMatcher([`archive@${p.archiveDomain}`]);
    let dir = '';
    const query = (file: string, key: string) => {
      if (!dir) {
        dir = configDir([]);
        writeOld(join(dir, 'spindle_rcpt'), p.rcptMap!);
        writeOld(join(dir, 'spindle_from'), p.fromMap!);
      }
      return run(POSTMAP!, ['-c', dir, '-q', key, `regexp:${join(dir, file)}`]);
    };

    it('maps alice@example.com to journal+rcpt.alice=example.com@archive.example', () => {
      const r = query('spindle_rcpt', 'alice@example.com');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('journal+rcpt.alice=example.com@archive.example');
      expect(query('spindle_from', 'alice@example.com').stdout.trim()).toBe(
        'journal+from.alice=example.com@archive.example',
      );
    });

    it('round-trips tricky addresses through Postfix and the matcher', () => {
      const cases: Array<[string, string]> = [
        ['Bob.Smith+tag@Example.COM', 'Bob.Smith+tag@example.com'],
        ['a=b+c@example.com', 'a=b+c@example.com'],
        ['x@y@example.com', '"x@y"@example.com'],
        [`${'z'.repeat(120)}@example.com`, `${'z'.repeat(120)}@example.com`],
      ];
      for (const [key, original] of cases) {
        const out = query('spindle_rcpt', key).stdout.trim();
        expect(matcher.match(out)).toEqual({ kind: 'rcpt', original });
      }
      // Postfix looks quoted local parts up in external form; the result keeps the quotes
      const quoted = query('spindle_rcpt', '"john doe"@example.com').stdout.trim();
      expect(quoted).toBe('journal+rcpt."john doe"=example.com@archive.example');
    });

    it('leaves addresses at the archive domain alone', () => {
      const r = query('spindle_rcpt', 'journal+rcpt.bob=example.com@archive.example');
      expect(r.status).toBe(1); // not found
      expect(r.stdout).toBe('');
      expect(query('spindle_from', 'archive@ARCHIVE.example').status).toBe(1);
    });

    it('routes the archive domain to the journal transport', () => {
      const inline = p.mainCf.find((l) => l.startsWith('transport_maps'))!.split(' = ')[1]!;
      if (!dir) query('spindle_rcpt', 'a@b');
      const r = run(POSTMAP!, ['-c', dir, '-q', 'archive.example', inline]);
      expect(r.stdout.trim()).toBe('journal:[127.0.0.1]:2525');
      expect(run(POSTMAP!, ['-c', dir, '-q', 'example.com', inline]).status).toBe(1);
    });
  });
});
