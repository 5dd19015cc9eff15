import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import type { DovecotInstance } from './dovecot.js';

export interface StoredMessage {
  sha256: string;
  internalDate: Date;
  flags: string[];
  size: number;
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** What one folder of a mailbox on the throwaway Dovecot holds, read back over IMAP; [] when the folder does not exist. */
export async function readFolder(dovecot: DovecotInstance, user: string, pass: string, folder: string): Promise<StoredMessage[]> {
  const client = new ImapFlow({
    host: dovecot.host, port: dovecot.imapsPort, secure: true, tls: { ca: dovecot.ca }, auth: { user, pass },
    logger: false, disableAutoIdle: true,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const list = await client.list();
    if (!list.some((m) => m.path === folder)) return [];
    const box = await client.mailboxOpen(folder, { readOnly: true });
    if (box.exists === 0) return [];
    const out: StoredMessage[] = [];
    for await (const m of client.fetch('1:*', { source: true, flags: true, internalDate: true })) {
      const internal = m.internalDate;
      out.push({
        sha256: sha256(m.source ?? Buffer.alloc(0)), size: m.source?.length ?? 0,
        internalDate: internal instanceof Date ? internal : new Date(String(internal)), flags: [...(m.flags ?? [])],
      });
    }
    return out;
  } finally {
    await client.logout().catch(() => undefined);
    client.close();
  }
}
