/** A daily HH:MM (server local time) → the next instant at or after `now` + 1 ms when it falls. */
export function nextDailyTime(hhmm: string, now: Date): Date {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new RangeError(`expected HH:MM, got ${JSON.stringify(hhmm)}`);
  const next = new Date(now);
  next.setHours(Number(m[1]), Number(m[2]), 0, 0);
  if (next.getTime() <= now.getTime()) next.setDate(next.getDate() + 1);
  return next;
}

export interface Schedule {
  /** When it fires next; null when off. */
  next(): Date | null;
  stop(): void;
}

/**
 * Calls `task` every day at `hhmm` (empty: never). One timer at a time, set again after each call
 * from the clock (not by adding 24 h), so a daylight-saving change or a slow run does not drift it.
 */
export function scheduleDaily(hhmm: string, task: () => Promise<void>, now: () => Date = () => new Date()): Schedule {
  if (!hhmm) return { next: () => null, stop: () => undefined };
  let timer: NodeJS.Timeout | null = null;
  let at: Date | null = null;
  let stopped = false;
  const arm = (): void => {
    if (stopped) return;
    at = nextDailyTime(hhmm, now());
    timer = setTimeout(() => {
      void task().finally(arm);
    }, Math.max(0, at.getTime() - now().getTime()));
    timer.unref();
  };
  arm();
  return {
    next: () => (stopped ? null : at),
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
