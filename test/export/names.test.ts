import { describe, expect, it } from 'vitest';
import { downloadName, emlFileName, safeFileName, subjectWords } from '../../src/export/names.js';

const at = Date.UTC(2024, 2, 1, 12, 4, 59);

describe('export file names', () => {
  it('date, subject words and id', () => {
    expect(emlFileName({ id: 1709294699123, sortTime: at, subject: 'Re: Quarterly report (Q1)!' })).toBe('2024-03-01_1204_re-quarterly-report-q1_1709294699123.eml');
  });

  it('folds accents and drops everything that is not ASCII letters or digits', () => {
    expect(subjectWords('Grüße aus Zürich — café ✓ 日本語 Straße')).toBe('grusse-aus-zurich-cafe-strasse');
    expect(emlFileName({ id: 7, sortTime: at, subject: '日本語 ✓✓' })).toBe('2024-03-01_1204_no-subject_7.eml');
    expect(emlFileName({ id: 7, sortTime: at, subject: '../../etc/passwd\\C:\u0000<>:"|?*' })).toBe('2024-03-01_1204_etc-passwd-c_7.eml');
  });

  it('caps the subject at 50 characters, on a word boundary when one is near', () => {
    const words = subjectWords('word '.repeat(40));
    expect(words.length).toBeLessThanOrEqual(50);
    expect(words.endsWith('word')).toBe(true);
    expect(subjectWords('x'.repeat(300))).toBe('x'.repeat(50));
    expect(emlFileName({ id: Number.MAX_SAFE_INTEGER, sortTime: at, subject: 'y'.repeat(1000) }).length).toBeLessThan(100);
  });

  it('never a Windows device name, never a leading dot or trailing dot/space', () => {
    for (const name of ['CON', 'con.eml', 'NUL', 'com1.txt', 'LPT9', 'aux']) expect(safeFileName(name).startsWith('_')).toBe(true);
    expect(safeFileName('console.eml')).toBe('console.eml');
    expect(safeFileName('..hidden')).toBe('_hidden');
    expect(safeFileName('name. ')).toBe('name');
    expect(safeFileName('')).toBe('_');
  });

  it('download names are plain and dated', () => {
    expect(downloadName(new Date(at), 'mbox')).toBe('spindle-export-20240301-120459.mbox');
    expect(downloadName(new Date(at), 'zip')).toBe('spindle-export-20240301-120459.zip');
  });
});
