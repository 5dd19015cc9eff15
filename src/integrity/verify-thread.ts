import { startModuleWorker } from '../ingest/worker-start.js';
import type { VerifyReport } from './verify.js';

export class IntegrityBusyError extends Error {
  readonly code = 'integrity_busy';
}

/**
 * verify for the API: on a worker thread, one at a time (a second request while one runs is
 * refused rather than queued, so requests cannot pile up disk work on a live server).
 */
export function createIntegrityCheck(dataDir: string): (sample: number | null) => Promise<VerifyReport> {
  let busy = false;
  return async (sample) => {
    if (busy) throw new IntegrityBusyError('an integrity check is already running; try again when it has finished');
    busy = true;
    try {
      const worker = startModuleWorker('../integrity/verify-worker', { workerData: { dataDir, ...(sample !== null ? { sample } : {}) } });
      return await new Promise<VerifyReport>((resolve, reject) => {
        worker.once('message', (m: { report?: VerifyReport; error?: string }) => (m.report ? resolve(m.report) : reject(new Error(m.error ?? 'verify failed'))));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`verify thread exited with code ${code}`)));
      }).finally(() => void worker.terminate());
    } finally {
      busy = false;
    }
  };
}
