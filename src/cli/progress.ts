import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: string): void;
  stop(): void;
}

/** A bar on a terminal; on a pipe or in CI, a plain line every few seconds. */
export function createProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted} {extra}`,
      stream, hideCursor: true, etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    const started = Date.now();
    bar.start(total, 0, { rate: 0, extra: '' });
    return {
      update(done, extra = '') {
        const rate = Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
        bar.update(done, { rate, extra });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const started = Date.now();
  const line = (done: number, extra: string) =>
    stream.write(`${label}: ${done}/${total} (${total ? Math.floor((done / total) * 100) : 100}%) ${Math.round(done / Math.max(0.001, (Date.now() - started) / 1000))}/s ${extra}\n`);
  return {
    update(done, extra = '') {
      if (Date.now() - last >= 5000) {
        last = Date.now();
        line(done, extra);
      }
    },
    stop() {
      /* the final summary is printed by the command */
    },
  };
}
