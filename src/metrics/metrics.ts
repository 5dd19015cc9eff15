import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one running archiver; one registry per instance, no globals. */
export interface Metrics {
  registry: Registry;
  smtpReplies: Counter<'code'>;
  smtpConnections: Counter<'outcome'>;
  ingestSeconds: Histogram<string>;
  indexSeconds: Histogram<string>;
  receivedBytes: Counter<string>;
  /** Registers a callback that reports archive totals and index lag at scrape time. */
  onScrape(collect: () => ArchiveGauges): void;
}

export interface ArchiveGauges {
  messages: number;
  deliveries: number;
  duplicates: number;
  rawBytes: number;
  storedBytes: number;
  indexLagRecords: number;
  indexLagSeconds: number;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  let collect: (() => ArchiveGauges) | null = null;
  let cached: { at: number; value: ArchiveGauges } | null = null;
  // One DB read per scrape, shared by all gauges of that scrape.
  const read = (): ArchiveGauges | null => {
    if (!collect) return null;
    if (!cached || Date.now() - cached.at > 500) cached = { at: Date.now(), value: collect() };
    return cached.value;
  };
  const gauge = (name: string, help: string, pick: (g: ArchiveGauges) => number) =>
    new Gauge({
      name, help, registers: [registry],
      collect() {
        const g = read();
        if (g) this.set(pick(g));
      },
    });
  gauge('spindle_messages', 'Logical messages in the archive.', (g) => g.messages);
  gauge('spindle_deliveries', 'SMTP deliveries archived (every journal copy received).', (g) => g.deliveries);
  gauge('spindle_duplicates', 'Deliveries merged into an existing message.', (g) => g.duplicates);
  gauge('spindle_raw_bytes', 'Original bytes of distinct stored blobs.', (g) => g.rawBytes);
  gauge('spindle_stored_bytes', 'Compressed bytes of distinct stored blobs on disk.', (g) => g.storedBytes);
  gauge('spindle_index_lag_records', 'Ledger records not yet searchable.', (g) => g.indexLagRecords);
  gauge('spindle_index_lag_seconds', 'Age of the oldest ledger record not yet searchable.', (g) => g.indexLagSeconds);
  return {
    registry,
    smtpReplies: new Counter({ name: 'spindle_smtp_replies_total', help: 'Final SMTP replies to DATA, by code.', labelNames: ['code'], registers: [registry] }),
    smtpConnections: new Counter({ name: 'spindle_smtp_connections_total', help: 'SMTP connections, by outcome.', labelNames: ['outcome'], registers: [registry] }),
    ingestSeconds: new Histogram({
      name: 'spindle_ingest_seconds', help: 'From end of DATA to the durable 250 (blob and ledger fsynced).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
    }),
    indexSeconds: new Histogram({
      name: 'spindle_index_seconds', help: 'From ledger commit to searchable.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [registry],
    }),
    receivedBytes: new Counter({ name: 'spindle_received_bytes_total', help: 'Message bytes received over SMTP.', registers: [registry] }),
    onScrape(fn) {
      collect = fn;
    },
  };
}
