import path from 'node:path';

/** Where each part of the archive lives inside the data directory. */
export function dataPaths(dataDir: string) {
  return {
    root: dataDir,
    blobs: path.join(dataDir, 'blobs'),
    ledger: path.join(dataDir, 'ledger'),
    audit: path.join(dataDir, 'audit'),
    db: path.join(dataDir, 'spindle.db'),
    lock: path.join(dataDir, 'spindle.pid'),
  };
}
