/**
 * worker_threads entry for `GET /api/integrity`: runs verifyArchive off the server's event loop
 * (it walks every blob directory synchronously). workerData: { dataDir, sample? }; posts
 * `{ report }` or `{ error }` once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { verifyArchive, type VerifyOptions } from './verify.js';

const port = parentPort;
if (port) {
  const data = workerData as Pick<VerifyOptions, 'dataDir' | 'sample'>;
  verifyArchive(data).then(
    (report) => port.postMessage({ report }),
    (err: unknown) => port.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
}
