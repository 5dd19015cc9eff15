import { describe, expect, it } from 'vitest';
import { addPeriod, formatPeriod, parsePeriod } from '../../src/retention/period.js';
import { nextDailyTime } from '../../src/retention/schedule.js';

const at = (iso: string) => Date.parse(iso);

describe('retention periods', () => {
  it('parses the short forms and forever, and prints them back', () => {
    expect(parsePeriod('90d')).toEqual({ count: 90, unit: 'days' });
    expect(parsePeriod('18 months')).toEqual({ count: 18, unit: 'months' });
    expect(parsePeriod('7Y')).toEqual({ count: 7, unit: 'years' });
    expect(parsePeriod('forever')).toBeNull();
    for (const p of ['90d', '18m', '7y', 'forever']) expect(formatPeriod(parsePeriod(p))).toBe(p);
    for (const bad of ['', '0d', '7', 'y7', 'seven years', '-1y']) expect(() => parsePeriod(bad), bad).toThrow(/90d, 18m, 7y or forever/);
  });

  it('adds calendar months and years, clamping to the end of a shorter month', () => {
    expect(addPeriod(at('2024-01-31T10:00:00Z'), { count: 1, unit: 'months' })).toBe(at('2024-02-29T10:00:00Z'));
    expect(addPeriod(at('2024-02-29T00:00:00Z'), { count: 1, unit: 'years' })).toBe(at('2025-02-28T00:00:00Z'));
    expect(addPeriod(at('2024-03-05T10:00:00Z'), { count: 7, unit: 'years' })).toBe(at('2031-03-05T10:00:00Z'));
    expect(addPeriod(at('2024-12-15T00:00:00Z'), { count: 3, unit: 'months' })).toBe(at('2025-03-15T00:00:00Z'));
    expect(addPeriod(at('2024-03-05T10:00:00Z'), { count: 30, unit: 'days' })).toBe(at('2024-04-04T10:00:00Z'));
    expect(addPeriod(0, null)).toBe(Infinity);
  });
});

describe('the daily purge time', () => {
  it('is the next HH:MM in local time, today if still ahead, else tomorrow', () => {
    const now = new Date(2024, 2, 5, 10, 0, 0);
    expect(nextDailyTime('03:30', now)).toEqual(new Date(2024, 2, 6, 3, 30, 0));
    expect(nextDailyTime('23:05', now)).toEqual(new Date(2024, 2, 5, 23, 5, 0));
    expect(nextDailyTime('10:00', now)).toEqual(new Date(2024, 2, 6, 10, 0, 0));
  });
});

describe('the schedule', () => {
  it('calls the task at the time, then sets itself again from the clock', async () => {
    const { scheduleDaily } = await import('../../src/retention/schedule.js');
    const clock = () => new Date(2024, 2, 5, 3, 29, 59, 950);
    let calls = 0;
    let done!: () => void;
    const fired = new Promise<void>((r) => (done = r));
    const s = scheduleDaily('03:30', async () => {
      calls++;
      done();
    }, clock);
    expect(s.next()).toEqual(new Date(2024, 2, 5, 3, 30, 0));
    await fired;
    s.stop();
    expect(calls).toBe(1);
    expect(s.next()).toBeNull();
    expect(scheduleDaily('', async () => undefined).next()).toBeNull();
  });
});
