import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatConfig, loadConfig, settingsMarkdown } from '../../src/config/load.js';
import { SETTINGS } from '../../src/config/settings.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('configuration', () => {
  it('has safe embedded defaults: loopback, ./data, 2525 and 8025', () => {
    const { config, sources } = loadConfig({ env: {} });
    expect(config).toMatchObject({
      smtpHost: '127.0.0.1', smtpPort: 2525, httpHost: '127.0.0.1', httpPort: 8025,
      archiveAddresses: ['archive@localhost'], smtpAllow: ['127.0.0.0/8', '::1/128'], maxMessageBytes: 50_000_000,
      trustedEnvelopeHeader: '',
    });
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(Object.values(sources).every((s) => s === 'default')).toBe(true);
  });

  it('layers file < env < flags and records where each value came from', () => {
    const file = path.join(tempDir(), 'spindle.json');
    fs.writeFileSync(file, JSON.stringify({ smtpPort: 2600, SPINDLE_HTTP_PORT: '9000', archiveAddresses: ['a@x.example', '@y.example'] }));
    const loaded = loadConfig({ file, env: { SPINDLE_HTTP_PORT: '9100' }, flags: { smtpPort: '0' } });
    expect(loaded.config).toMatchObject({ smtpPort: 0, httpPort: 9100, archiveAddresses: ['a@x.example', '@y.example'] });
    expect(loaded.sources).toMatchObject({ smtpPort: 'flag', httpPort: 'env', archiveAddresses: 'file', dataDir: 'default' });
  });

  it('rejects bad values with a message naming the variable', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ SPINDLE_SMTP_PORT: '70000' }, /SPINDLE_SMTP_PORT \(env\): expected a port number/],
      [{ SPINDLE_MAX_MESSAGE_SIZE: 'huge' }, /SPINDLE_MAX_MESSAGE_SIZE .*size like 50MB/],
      [{ SPINDLE_LOG_LEVEL: 'loud' }, /SPINDLE_LOG_LEVEL .*one of fatal/],
      [{ SPINDLE_TRUSTED_ENVELOPE_HEADER: 'x-anything' }, /SPINDLE_TRUSTED_ENVELOPE_HEADER/],
      [{ SPINDLE_SMTP_TLS_CERT: '/c.pem' }, /must be set together/],
      [{ SPINDLE_ARCHIVE_ADDRESSES: ' , ' }, /at least one archive address/],
    ];
    for (const [env, msg] of bad) expect(() => loadConfig({ env }), JSON.stringify(env)).toThrow(msg);
    const file = path.join(tempDir(), 'c.json');
    fs.writeFileSync(file, '{"smtpPrt": 1}');
    expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown setting "smtpPrt"/);
  });

  it('parses sizes with decimal and binary units', () => {
    expect(loadConfig({ env: { SPINDLE_MAX_MESSAGE_SIZE: '10MiB' } }).config.maxMessageBytes).toBe(10 * 1024 * 1024);
    expect(loadConfig({ env: { SPINDLE_MAX_MESSAGE_SIZE: '2.5MB' } }).config.maxMessageBytes).toBe(2_500_000);
  });

  it('hides secrets when printing', () => {
    const out = formatConfig(loadConfig({ env: { SPINDLE_SMTP_TLS_CERT: '/c.pem', SPINDLE_SMTP_TLS_KEY: '/secret/key.pem' } }));
    expect(out).toContain('SPINDLE_SMTP_TLS_KEY=***');
    expect(out).not.toContain('/secret/key.pem');
  });

  it('every setting is documented in README.md, exactly as generated from the schema', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(settingsMarkdown());
    for (const s of SETTINGS) expect(s.description.length).toBeGreaterThan(10);
  });
});
