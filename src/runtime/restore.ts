import fs from 'node:fs';
import type { ImapSecurity } from '../auth/imap-login.js';
import type { Config } from '../config/settings.js';
import type { RestoreSetup } from '../restore/restore-job.js';

/**
 * Restores connect to the same IMAP server, with the same TLS settings, as IMAP sign-in
 * (SPINDLE_IMAP_*); the master user (SPINDLE_RESTORE_IMAP_*) is only for restoring into a
 * mailbox whose password Spindle does not have.
 */
export function restoreSetupFromConfig(config: Config): RestoreSetup {
  return {
    imap: config.imapHost
      ? {
          host: config.imapHost, port: config.imapPort, security: config.imapSecurity as ImapSecurity,
          rejectUnauthorized: config.imapTlsVerify, ...(config.imapCa ? { ca: fs.readFileSync(config.imapCa) } : {}),
        }
      : null,
    master: config.restoreImapUser
      ? { user: config.restoreImapUser, password: config.restoreImapPassword, separator: config.restoreMasterSeparator }
      : null,
  };
}
