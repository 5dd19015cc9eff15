import type { Readable } from 'node:stream';

/** What put() learned about the bytes it stored. */
export interface PutResult {
  /** sha256 (hex) of the original bytes: the blob's name. */
  sha256: string;
  /** Original size in bytes. */
  size: number;
  /** Bytes on disk (compressed); for an existing blob, its size on disk. */
  storedSize: number;
  /** True when a blob with these bytes was already stored (byte-identical duplicate). */
  existed: boolean;
}

/**
 * Content-addressed store of original message bytes. Every backend (local disk today, an
 * S3-compatible one later) honours the same contract, checked by one shared test suite:
 * put() resolves only once the bytes are durable; blobs are immutable; a blob is named by the
 * sha256 of its original bytes, whatever the backend does to store them.
 */
export interface BlobStore {
  put(source: AsyncIterable<Buffer>, opts?: { maxBytes?: number }): Promise<PutResult>;
  has(sha256: string): Promise<boolean>;
  /** The original bytes; throws BlobNotFoundError when absent. */
  get(sha256: string): Promise<Buffer>;
  /** The original bytes as a stream, for large messages and downloads. */
  getStream(sha256: string): Readable;
  /** Bytes on disk and original size without decompressing everything twice. */
  stat(sha256: string): Promise<{ storedSize: number } | null>;
  /**
   * Starts (or restarts) noting puts of these blobs, because a purge means to delete them: a put of
   * the same bytes from now on (or one under way now) makes delete() keep the blob, since new mail
   * needs it. Puts that finished before are the caller's to find (their deliveries are in the ledger).
   */
  watch(sha256s: Iterable<string>): void;
  /**
   * Deletes a blob for good (crash-safe: once it resolves true, a restart does not bring it back).
   * Resolves false, deleting nothing, when the blob is watched and was put again since watch().
   */
  delete(sha256: string): Promise<boolean>;
  /** Every stored blob name, for verify. */
  list(): AsyncIterable<string>;
  /** Flushes whatever the backend holds back (the local journal's checkpoint). */
  close(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  readonly code = 'blob_not_found';
  constructor(readonly sha256: string) {
    super(`blob ${sha256} is not in the store`);
  }
}

export class MessageTooLargeError extends Error {
  readonly code = 'message_too_large';
  constructor(readonly limit: number) {
    super(`message exceeds the size limit of ${limit} bytes`);
  }
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
