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
  delete(sha256: string): Promise<void>;
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
