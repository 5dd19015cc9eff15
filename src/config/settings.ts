/**
 * Every setting Spindle reads, declared once: name, environment variable, default, description.
 * The loader, `spindle config`, the README reference and a test all derive from this list.
 */
export type SettingType = 'string' | 'port' | 'int' | 'bytes' | 'list' | 'bool' | 'enum';

export interface SettingSpec {
  key: keyof Config;
  env: string;
  type: SettingType;
  default: string;
  description: string;
  choices?: readonly string[];
  /** Shown as *** by `spindle config`. */
  secret?: boolean;
}

export interface Config {
  dataDir: string;
  smtpHost: string;
  smtpPort: number;
  httpHost: string;
  httpPort: number;
  archiveAddresses: string[];
  smtpAllow: string[];
  maxMessageBytes: number;
  smtpMaxClients: number;
  smtpTlsCert: string;
  smtpTlsKey: string;
  smtpHostname: string;
  trustedEnvelopeHeader: string;
  parseWorkers: number;
  purgeTime: string;
  imapHost: string;
  imapPort: number;
  imapSecurity: string;
  imapTlsVerify: boolean;
  imapCa: string;
  imapDomains: string[];
  restoreImapUser: string;
  restoreImapPassword: string;
  restoreMasterSeparator: string;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  httpTrustProxy: string[];
  adminPassword: string;
  logLevel: string;
  logFormat: string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { key: 'dataDir', env: 'SPINDLE_DATA_DIR', type: 'string', default: './data',
    description: 'Directory holding blobs/, ledger/ and spindle.db. Relative paths resolve against the working directory.' },
  { key: 'smtpHost', env: 'SPINDLE_SMTP_HOST', type: 'string', default: '127.0.0.1',
    description: 'Address the SMTP journal listener binds to. Keep it on loopback unless Postfix runs elsewhere.' },
  { key: 'smtpPort', env: 'SPINDLE_SMTP_PORT', type: 'port', default: '2525',
    description: 'SMTP listener port; 0 picks a free port (the bound port is logged).' },
  { key: 'httpHost', env: 'SPINDLE_HTTP_HOST', type: 'string', default: '127.0.0.1',
    description: 'Address the HTTP API binds to.' },
  { key: 'httpPort', env: 'SPINDLE_HTTP_PORT', type: 'port', default: '8025',
    description: 'HTTP API port; 0 picks a free port (the bound port is logged).' },
  { key: 'archiveAddresses', env: 'SPINDLE_ARCHIVE_ADDRESSES', type: 'list', default: 'archive@localhost',
    description: 'Comma list of accepted archive addresses, or @domain for a whole domain. Encoded journal+rcpt./journal+from. addresses under these domains are accepted too.' },
  { key: 'smtpAllow', env: 'SPINDLE_SMTP_ALLOW', type: 'list', default: '127.0.0.0/8,::1/128',
    description: 'Comma list of client networks (CIDR or single address) allowed to deliver; others get 554 at connect.' },
  { key: 'maxMessageBytes', env: 'SPINDLE_MAX_MESSAGE_SIZE', type: 'bytes', default: '50MB',
    description: 'Largest message accepted (SIZE); larger ones get 552. Accepts K, M, G suffixes (powers of 1000 for KB/MB/GB, 1024 for KiB/MiB/GiB).' },
  { key: 'smtpMaxClients', env: 'SPINDLE_SMTP_MAX_CLIENTS', type: 'int', default: '100',
    description: 'Concurrent SMTP connections; beyond it clients get 421 and retry later.' },
  { key: 'smtpTlsCert', env: 'SPINDLE_SMTP_TLS_CERT', type: 'string', default: '',
    description: 'PEM certificate file for STARTTLS; STARTTLS is offered only when both certificate and key are set.' },
  { key: 'smtpTlsKey', env: 'SPINDLE_SMTP_TLS_KEY', type: 'string', default: '', secret: true,
    description: 'PEM private key file for STARTTLS.' },
  { key: 'smtpHostname', env: 'SPINDLE_SMTP_HOSTNAME', type: 'string', default: 'spindle.localhost',
    description: 'Name in the SMTP greeting and EHLO reply.' },
  { key: 'trustedEnvelopeHeader', env: 'SPINDLE_TRUSTED_ENVELOPE_HEADER', type: 'enum', default: '',
    choices: ['', 'x-original-to', 'x-envelope-to'],
    description: 'Trust this header as a list of envelope recipients. Off by default: such a header is visible to every recipient and so leaks Bcc.' },
  { key: 'parseWorkers', env: 'SPINDLE_PARSE_WORKERS', type: 'int', default: '1',
    description: 'Indexing behind the 250: 1 runs parsing and index writes on one index thread with its own database connection; N > 1 gives that thread N parse workers; 0 indexes on the main thread.' },
  { key: 'purgeTime', env: 'SPINDLE_PURGE_TIME', type: 'string', default: '',
    description: 'Daily time (HH:MM, server local time) at which the server runs the retention purge (docs/retention.md); empty: purges run only on demand.' },
  { key: 'imapHost', env: 'SPINDLE_IMAP_HOST', type: 'string', default: '',
    description: 'IMAP server (the Dovecot of the mail server) against which mailbox owners sign in with their mail password; empty turns IMAP sign-in off.' },
  { key: 'imapPort', env: 'SPINDLE_IMAP_PORT', type: 'port', default: '993',
    description: 'IMAP port: 993 for tls, 143 for starttls.' },
  { key: 'imapSecurity', env: 'SPINDLE_IMAP_SECURITY', type: 'enum', default: 'tls', choices: ['tls', 'starttls', 'none'],
    description: 'tls (implicit TLS), starttls (required, never falls back to cleartext), or none (only for a loopback host).' },
  { key: 'imapTlsVerify', env: 'SPINDLE_IMAP_TLS_VERIFY', type: 'bool', default: 'true',
    description: "Check the IMAP server's certificate. Turn off only for a self-signed certificate on a trusted network; better, give its CA in SPINDLE_IMAP_CA." },
  { key: 'imapCa', env: 'SPINDLE_IMAP_CA', type: 'string', default: '',
    description: 'PEM file of the CA that signed the IMAP certificate (replaces the system CAs for IMAP).' },
  { key: 'imapDomains', env: 'SPINDLE_IMAP_DOMAINS', type: 'list', default: '',
    description: 'Comma list of mail domains whose users may sign in over IMAP; empty allows any domain the IMAP server accepts.' },
  { key: 'restoreImapUser', env: 'SPINDLE_RESTORE_IMAP_USER', type: 'string', default: '',
    description: 'Dovecot master user with which auditors and `spindle restore` put messages back into any mailbox, logging in as alice@example.com*MASTER (docs/restore.md); empty: users can still restore into their own mailbox.' },
  { key: 'restoreImapPassword', env: 'SPINDLE_RESTORE_IMAP_PASSWORD', type: 'string', default: '', secret: true,
    description: 'Password of the restore master user.' },
  { key: 'restoreMasterSeparator', env: 'SPINDLE_RESTORE_MASTER_SEPARATOR', type: 'string', default: '*',
    description: "Dovecot's auth_master_user_separator, between the mailbox and the master user name." },
  { key: 'sessionIdleMinutes', env: 'SPINDLE_SESSION_IDLE_MINUTES', type: 'int', default: '30',
    description: 'A browser session unused this long ends.' },
  { key: 'sessionMaxHours', env: 'SPINDLE_SESSION_MAX_HOURS', type: 'int', default: '12',
    description: 'A browser session ends this long after sign-in, however active.' },
  { key: 'httpTrustProxy', env: 'SPINDLE_HTTP_TRUST_PROXY', type: 'list', default: '',
    description: 'Comma list of reverse-proxy addresses (CIDR) whose X-Forwarded-For/-Proto are believed: client addresses in the audit trail and Secure cookies behind a TLS proxy. Empty trusts none.' },
  { key: 'adminPassword', env: 'SPINDLE_ADMIN_PASSWORD', type: 'string', default: '', secret: true,
    description: 'Password of the admin account created at the first start when no account holds the admin role; empty generates one and prints it once.' },
  { key: 'logLevel', env: 'SPINDLE_LOG_LEVEL', type: 'enum', default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    description: 'How much to log; info logs every archived message, debug every connection.' },
  { key: 'logFormat', env: 'SPINDLE_LOG_FORMAT', type: 'enum', default: 'auto', choices: ['auto', 'json', 'pretty'],
    description: 'json for log collectors, pretty for people; auto is pretty on a terminal, json otherwise.' },
];
