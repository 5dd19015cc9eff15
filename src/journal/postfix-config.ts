/**
 * The Postfix configuration an admin pastes to send journal copies to Spindle
 * (printed by `spindle postfix-config`). See docs/postfix.md for the reasoning.
 *
 * Verified against Postfix 3.7 (Debian 12): `postconf -n` accepts the main.cf lines without
 * warnings, `postconf -M`/`-P` accept the master.cf entry, and `postmap -q` on the regexp maps
 * yields `journal+rcpt.alice=example.com@archive.example` (see test/journal/postfix-config.test.ts,
 * which also drives a throwaway Postfix end to end).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export type PostfixJournalMode = 'envelope' | 'always_bcc' | 'both';

export interface PostfixConfigOptions {
  /** Domain of the journal addresses; must not be a local/virtual/relay domain of Postfix. */
  archiveDomain: string;
  /** Where Spindle's SMTP listener is (IP address or host name). */
  smtpHost: string;
  smtpPort: number;
  /** Default 'envelope' (recommended). */
  mode?: PostfixJournalMode;
}

export interface PostfixConfigParts {
  mode: PostfixJournalMode;
  archiveDomain: string;
  /** Transport name and next hop, e.g. `journal:[127.0.0.1]:2525`. */
  transport: string;
  /** Spindle's listener as host:port for tools like swaks, e.g. `127.0.0.1:2525`, `[::1]:2525`. */
  listener: string;
  /** Paths of the regexp maps (null in always_bcc mode). */
  rcptMapPath: string | null;
  fromMapPath: string | null;
  /** Contents of the regexp map files (null in always_bcc mode). */
  rcptMap: string | null;
  fromMap: string | null;
  /** main.cf parameter lines (`name = value`), no comments. */
  mainCf: string[];
  /** master.cf lines of the `journal` service (first line plus `-o` lines). */
  masterCf: string[];
  /** Value for SPINDLE_ARCHIVE_ADDRESSES that accepts what this configuration sends. */
  spindleArchiveAddresses: string;
  /** Shell commands to check and apply the configuration. */
  commands: string[];
}

export const TRANSPORT_NAME = 'journal';
export const RCPT_MAP_PATH = '/etc/postfix/spindle_rcpt';
export const FROM_MAP_PATH = '/etc/postfix/spindle_from';
export const RECIPIENT_LIMIT = 1000;
export const CONCURRENCY_LIMIT = 10;

function normalizeArchiveDomain(raw: string): string {
  let d = raw.trim().toLowerCase();
  if (d.startsWith('@')) d = d.slice(1);
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (/[^\x21-\x7e]/.test(d)) d = domainToASCII(d); // IDN → A-label; '' when invalid
  if (!d || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(d)) {
    throw new Error(`invalid archive domain ${JSON.stringify(raw)}`);
  }
  return d;
}

/** Postfix next-hop syntax: `[1.2.3.4]`, `[ipv6:::1]`, `[host.example]` (brackets: no MX lookup). */
function formatNexthop(
  rawHost: string,
  port: number,
): { nexthop: string; loopback: boolean; listener: string } {
  let host = rawHost.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (/^ipv6:/i.test(host)) host = host.slice(5);
  // A wildcard bind address (Spindle listening on all interfaces) is reached over loopback.
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`invalid SMTP port ${String(port)}`);
  }
  const ipVersion = isIP(host);
  let bracketed: string;
  if (ipVersion === 6) bracketed = `[ipv6:${host}]`;
  else if (ipVersion === 4) bracketed = `[${host}]`;
  else if (/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) bracketed = `[${host}]`;
  else throw new Error(`invalid SMTP host ${JSON.stringify(rawHost)}`);
  const lower = host.toLowerCase();
  const loopback =
    (ipVersion === 4 && host.startsWith('127.')) ||
    (ipVersion === 6 && (lower === '::1' || lower === '0:0:0:0:0:0:0:1')) ||
    lower === 'localhost';
  const listener = ipVersion === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  return { nexthop: `${bracketed}:${port}`, loopback, listener };
}

function regexpEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function regexpMap(kind: 'rcpt' | 'from', archiveDomain: string): string {
  return [
    `if !/@${regexpEscape(archiveDomain)}$/`,
    `/^(.+)@(.+)$/    journal+${kind}.\${1}=\${2}@${archiveDomain}`,
    'endif',
    '',
  ].join('\n');
}

/** The configuration as structured parts (what `postfixConfig` renders). */
export function postfixConfigParts(opts: PostfixConfigOptions): PostfixConfigParts {
  const mode: PostfixJournalMode = opts.mode ?? 'envelope';
  if (mode !== 'envelope' && mode !== 'always_bcc' && mode !== 'both') {
    throw new Error(`invalid mode ${JSON.stringify(mode)}`);
  }
  const archiveDomain = normalizeArchiveDomain(opts.archiveDomain);
  const { nexthop, loopback, listener } = formatNexthop(opts.smtpHost, opts.smtpPort);
  const transport = `${TRANSPORT_NAME}:${nexthop}`;
  const useMaps = mode !== 'always_bcc';
  const useAlwaysBcc = mode !== 'envelope';

  const mainCf: string[] = [];
  if (useMaps) {
    mainCf.push(`recipient_bcc_maps = regexp:${RCPT_MAP_PATH}`);
    mainCf.push(`sender_bcc_maps = regexp:${FROM_MAP_PATH}`);
  }
  if (useAlwaysBcc) mainCf.push(`always_bcc = archive@${archiveDomain}`);
  mainCf.push(`transport_maps = inline:{${archiveDomain}=${transport}}`);
  if (useMaps) mainCf.push(`${TRANSPORT_NAME}_destination_recipient_limit = ${RECIPIENT_LIMIT}`);
  mainCf.push(`${TRANSPORT_NAME}_destination_concurrency_limit = ${CONCURRENCY_LIMIT}`);

  const masterCf = [
    `${TRANSPORT_NAME}   unix  -       -       n       -       -       smtp`,
    `  -o syslog_name=postfix/${TRANSPORT_NAME}`,
    '  -o smtp_line_length_limit=0',
    '  -o disable_mime_output_conversion=yes',
    '  -o smtp_generic_maps=',
    '  -o smtp_header_checks=',
    '  -o smtp_mime_header_checks=',
    '  -o smtp_nested_header_checks=',
    '  -o smtp_body_checks=',
  ];
  if (loopback) masterCf.push('  -o smtp_tls_security_level=none');

  const commands = ['postfix check'];
  if (useMaps) {
    commands.push(`postmap -q alice@example.com regexp:${RCPT_MAP_PATH}`);
    commands.push(`postmap -q alice@example.com regexp:${FROM_MAP_PATH}`);
  }
  commands.push(
    `postconf -n ${useMaps ? 'recipient_bcc_maps sender_bcc_maps ' : ''}${useAlwaysBcc ? 'always_bcc ' : ''}transport_maps`,
  );
  commands.push(`postconf -M ${TRANSPORT_NAME}/unix`);
  commands.push('postfix reload');

  return {
    mode,
    archiveDomain,
    transport,
    listener,
    rcptMapPath: useMaps ? RCPT_MAP_PATH : null,
    fromMapPath: useMaps ? FROM_MAP_PATH : null,
    rcptMap: useMaps ? regexpMap('rcpt', archiveDomain) : null,
    fromMap: useMaps ? regexpMap('from', archiveDomain) : null,
    mainCf,
    masterCf,
    spindleArchiveAddresses: `archive@${archiveDomain}`,
    commands,
  };
}

/** Start marker of a section in the rendered text: `# ==== <title> ====`. */
export function sectionMarker(title: string): string {
  return `# ==== ${title} ====`;
}

/**
 * Extracts the non-comment lines of one section (by title prefix) from `postfixConfig` output.
 * Useful for tests and for scripted installs.
 */
export function extractSection(text: string, titlePrefix: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`# ==== ${titlePrefix}`));
  if (start === -1) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('# ==== ')) break;
    if (line.trim() === '' || line.startsWith('#')) continue;
    out.push(line);
  }
  return out;
}

/** The exact text an admin pastes, with comments. */
export function postfixConfig(opts: PostfixConfigOptions): string {
  const p = postfixConfigParts(opts);
  const d = p.archiveDomain;
  const useMaps = p.mode !== 'always_bcc';
  const out: string[] = [];
  const c = (...lines: string[]) => {
    for (const l of lines) out.push(l === '' ? '#' : `# ${l}`);
  };

  out.push(`# Spindle: Postfix journal configuration (mode: ${p.mode})`);
  c(
    `Generated by \`spindle postfix-config\` for archive domain ${d}, sent to Spindle at`,
    `${p.listener}. Needs Postfix >= 3.0 (inline: tables; Debian 12 has 3.7).`,
    'Each section below says where its lines go. Lines starting with # are explanations.',
  );
  if (d === 'localhost' || d.startsWith('localhost.') || d.endsWith('.localhost')) {
    c(
      '',
      `WARNING: ${d} is one of Postfix's own local domains (mydestination). Routing it to`,
      'Spindle would send all local system mail there. Give Spindle an archive address at a',
      'domain of its own first, e.g. SPINDLE_ARCHIVE_ADDRESSES=archive@archive.invalid, and',
      'run `spindle postfix-config` again.',
    );
  }
  c('');
  if (p.mode === 'always_bcc') {
    c(
      'always_bcc mode sends ONE copy of each message to one archive address. Spindle then',
      'only knows the To: and Cc: headers: envelope recipients are lost, and so are Bcc',
      'recipients (Postfix removes the Bcc: header). Envelope mode',
      '(`spindle postfix-config --mode envelope`) keeps both and is recommended.',
    );
  } else {
    c(
      'Why envelope mode (recommended): for each message Postfix adds one archive recipient per',
      `envelope recipient, journal+rcpt.LOCAL=DOMAIN@${d}, and one for the envelope sender,`,
      `journal+from.LOCAL=DOMAIN@${d}. Spindle decodes them, so it knows every envelope`,
      'recipient, Bcc recipients included, and no header shows them to the other recipients.',
      'always_bcc gives Spindle only the To: and Cc: headers; Bcc recipients are lost.',
    );
    if (p.mode === 'both') {
      c(
        '',
        `Mode "both" also sets always_bcc (e.g. while migrating): archive@${d} then arrives in`,
        'the same delivery as the journal addresses; nothing is archived twice.',
      );
    }
  }
  c(
    '',
    'Before you start:',
    `- ${d} must be used for nothing else: NOT a local, virtual or relay domain of this`,
    '  Postfix (mydestination, virtual_mailbox_domains, virtual_alias_domains, relay_domains;',
    '  on iRedMail: not a domain in iRedAdmin/SQL/LDAP), or Postfix would deliver or rewrite',
    '  the journal copies itself. It needs no DNS record: transport_maps routes it to Spindle.',
    '  Check: `postconf -h mydestination virtual_mailbox_domains virtual_alias_domains relay_domains`',
    `  must not name it, and \`postmap -q ${d} TABLE\` must print nothing for each table there,`,
    `  e.g. \`postmap -q ${d} proxy:mysql:/etc/postfix/mysql/virtual_mailbox_domains.cf\`.`,
    `- Spindle must accept the addresses: SPINDLE_ARCHIVE_ADDRESSES=${p.spindleArchiveAddresses}`,
    '  (journal+rcpt. and journal+from. addresses are accepted under the domain of any entry).',
    '- Start Spindle first. While it does not answer, Postfix keeps the copies queued and retries.',
  );
  out.push('');

  if (useMaps) {
    out.push(sectionMarker(`${p.rcptMapPath} (new file)`));
    c(
      'Encodes every envelope recipient into a journal address. Addresses already at',
      `${d} are left alone. A regexp table needs no postmap; \${1} and \${2} are literal.`,
    );
    out.push(...p.rcptMap!.trimEnd().split('\n'), '');
    out.push(sectionMarker(`${p.fromMapPath} (new file)`));
    c('The same for the envelope sender.');
    out.push(...p.fromMap!.trimEnd().split('\n'), '');
  }

  out.push(sectionMarker('/etc/postfix/main.cf (add)'));
  out.push(...p.mainCf);
  c(
    '',
    'If a parameter above is already set (`postconf -n` shows it), do not add a second line:',
    "merge, with Spindle's table FIRST. iRedMail sets transport_maps" +
      (useMaps ? ', recipient_bcc_maps and sender_bcc_maps;' : ';'),
    'with its MySQL backend the result looks like this (keep your own existing entries):',
    '  transport_maps =',
    `      inline:{${d}=${p.transport}}`,
    '      proxy:mysql:/etc/postfix/mysql/transport_maps_user.cf',
    '      proxy:mysql:/etc/postfix/mysql/transport_maps_maillist.cf',
    '      proxy:mysql:/etc/postfix/mysql/transport_maps_domain.cf',
  );
  if (useMaps) {
    c(
      '  recipient_bcc_maps =',
      `      regexp:${p.rcptMapPath}`,
      '      proxy:mysql:/etc/postfix/mysql/recipient_bcc_maps_user.cf',
      '      proxy:mysql:/etc/postfix/mysql/recipient_bcc_maps_domain.cf',
      '  sender_bcc_maps =',
      `      regexp:${p.fromMapPath}`,
      '      proxy:mysql:/etc/postfix/mysql/sender_bcc_maps_user.cf',
      '      proxy:mysql:/etc/postfix/mysql/sender_bcc_maps_domain.cf',
      'Postfix adds only ONE BCC address per recipient and per sender: the first table that',
      'matches wins (a unionmap: of both does not work either). Spindle must come',
      'first, or anyone with an iRedAdmin BCC rule would be missing from the archive; in turn,',
      "iRedAdmin's per-user/per-domain BCC rules stop taking effect.",
      '',
      `${TRANSPORT_NAME}_destination_recipient_limit lets one journal delivery carry up to ${RECIPIENT_LIMIT}`,
      'recipients; without it default_destination_recipient_limit (50) splits big messages into',
      'several identical deliveries (Spindle merges them, but one is better).',
    );
  }
  c(
    `${TRANSPORT_NAME}_destination_concurrency_limit caps parallel connections to Spindle.`,
    `Postfix < 3.0 has no inline: tables: put "${d} ${p.transport}" into`,
    '/etc/postfix/spindle_transport, run `postmap /etc/postfix/spindle_transport` and use',
    'hash:/etc/postfix/spindle_transport instead.',
  );
  out.push('');

  out.push(sectionMarker('/etc/postfix/master.cf (append)'));
  c(
    'A dedicated smtp client that talks straight to Spindle. It must not point at Amavisd or',
    'back into Postfix (ports 10024, 10025, 25): that would loop and journal the copies again.',
    'The -o lines keep the bytes as queued: no line folding, no 8bit->7bit conversion, no',
    'generic/header/body rewriting on the way to the archive.',
  );
  out.push(...p.masterCf);
  if (!p.masterCf.some((l) => l.includes('smtp_tls_security_level'))) {
    c(
      'Spindle is not on this host: if its listener offers STARTTLS, add',
      '  -o smtp_tls_security_level=encrypt',
    );
  }
  out.push('');

  out.push(sectionMarker('Apply (shell, as root)'));
  if (useMaps) {
    c(`The postmap lines must print journal+rcpt.alice=example.com@${d} and journal+from.alice=example.com@${d}.`);
  }
  out.push(...p.commands, '');

  c(
    'iRedMail notes:',
    '- Amavisd (content_filter): the journal recipients pass Amavisd once together with the',
    '  others; its re-injection on 127.0.0.1:10025 has no_address_mappings, so no second copy.',
    '- mlmmj re-injects list posts on 127.0.0.1:10028 without no_address_mappings: each list',
    '  delivery batch reaches Spindle again. That is expected; Spindle merges the copies.',
    '- iRedMail sets maximal_queue_lifetime = 4h. Journal copies that cannot reach Spindle for',
    '  that long expire without any bounce (Postfix sends them with NOTIFY=NEVER). Watch for',
    `  "postfix/${TRANSPORT_NAME}" deferrals in the mail log and keep Spindle up.`,
    '',
    'Check it end to end (see docs/postfix.md): straight to Spindle,',
    `  swaks --server ${p.listener} --from alice@example.com --to journal+rcpt.bob=example.com@${d}`,
    'then through Postfix with a Bcc recipient (hidden@ is in no header; use your own users):',
    "  swaks --server 127.0.0.1:25 --from alice@example.com --to bob@example.com,hidden@example.com --header 'To: bob@example.com'",
    'and search Spindle for the subject: hidden@example.com must show as a Bcc recipient.',
  );
  return out.join('\n') + '\n';
}
