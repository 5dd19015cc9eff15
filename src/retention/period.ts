import type { RetentionPeriod } from '../ledger/records.js';

export class PeriodError extends Error {
  readonly code = 'bad_period';
}

const UNITS = { d: 'days', m: 'months', y: 'years' } as const;

/** '90d', '18m', '7y' (or 'forever', null) → a period; the same short form as formatPeriod. */
export function parsePeriod(text: string): RetentionPeriod | null {
  const t = text.trim().toLowerCase();
  if (t === 'forever') return null;
  const m = /^(\d{1,4})\s*(d|days?|m|months?|y|years?)$/.exec(t);
  if (!m || Number(m[1]) < 1) throw new PeriodError(`period must look like 90d, 18m, 7y or forever, not ${JSON.stringify(text)}`);
  return { count: Number(m[1]), unit: UNITS[m[2]![0] as keyof typeof UNITS] };
}

export function formatPeriod(p: RetentionPeriod | null): string {
  return p ? `${p.count}${p.unit[0]}` : 'forever';
}

/**
 * The instant `period` after `fromMs`, in calendar terms (UTC): months and years keep the day of
 * the month, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb). Infinity for forever.
 */
export function addPeriod(fromMs: number, period: RetentionPeriod | null): number {
  if (!period) return Infinity;
  if (period.unit === 'days') return fromMs + period.count * 86_400_000;
  const months = period.unit === 'years' ? period.count * 12 : period.count;
  const d = new Date(fromMs);
  const day = d.getUTCDate();
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return target.getTime();
}
