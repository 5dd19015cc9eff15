import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createUserStore } from '../../src/db/users.js';
import { selectMessages, SelectionError, type SelectionRequest } from '../../src/export/selection.js';
import { tempDir } from '../helpers/tmp.js';
import { seedExportFixture } from './fixture.js';

let db: Db;
let byId: Map<number, string>;
let carol: number;
let bob: number;

beforeAll(async () => {
  const dir = tempDir();
  const messages = await seedExportFixture(dir);
  byId = new Map(messages.map((m) => [m.id, m.key]));
  db = openDatabase({ file: path.join(dir, 'spindle.db') });
  const users = createUserStore(db);
  carol = users.create({ name: 'carol', source: 'local', roles: ['user'], addresses: ['carol@example.com'] }).id;
  bob = users.create({ name: 'bob', source: 'local', roles: ['user'], addresses: ['bob@example.com', 'team@example.com'] }).id;
}, 60_000);
afterAll(() => db?.close());

function keys(req: SelectionRequest, pageSize?: number): { count: number; keys: string[] } {
  const s = selectMessages(db, req);
  const ids = [...s.pages(pageSize)].flat();
  return { count: s.count, keys: ids.map((id) => byId.get(id) ?? `?${id}`) };
}

describe('export selection', () => {
  it('a search, oldest first, with the count up front', () => {
    expect(keys({ spec: { query: 'pineapple' } })).toEqual({ count: 3, keys: ['m1', 'm2', 'm3'] });
    expect(keys({ spec: { query: '' } })).toEqual({ count: 6, keys: ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'] });
    expect(keys({ spec: { query: '' }, order: 'newest' }).keys).toEqual(['m6', 'm5', 'm4', 'm3', 'm2', 'm1']);
    expect(keys({ spec: { query: 'msgid:<m2@example.com>' } }).keys).toEqual(['m2']);
  });

  it('date flags work like after:/before: and combine with the query\'s own', () => {
    expect(keys({ spec: { query: '' }, after: '2024-03-02', before: '2024-03-04' }).keys).toEqual(['m2', 'm3']);
    expect(keys({ spec: { query: 'pineapple after:2024-03-02' }, before: '2024-03-03' }).keys).toEqual(['m2']);
    expect(keys({ spec: { mailbox: ['bob@example.com'] }, after: '2024-03-02' }).keys).toEqual(['m4']);
  });

  it('mailboxes: every message an address takes part in, Bcc and Cc included, merged without duplicates', () => {
    expect(keys({ spec: { mailbox: ['carol@example.com'] } })).toEqual({ count: 1, keys: ['m1'] });
    expect(keys({ spec: { mailbox: ['BOB@Example.com'] } }).keys).toEqual(['m1', 'm4']);
    for (const size of [1, 2, 500]) {
      expect(keys({ spec: { mailbox: ['bob@example.com', 'team@example.com', 'alice@example.com'] } }, size))
        .toEqual({ count: 4, keys: ['m1', 'm3', 'm4', 'm6'] });
    }
  });

  it('a domain is an exact suffix: no subdomains, no look-alikes, no wildcards', () => {
    expect(keys({ spec: { domain: 'example.com' } })).toEqual({ count: 5, keys: ['m1', 'm2', 'm3', 'm4', 'm6'] });
    expect(keys({ spec: { domain: '@BadExample.com' } }).keys).toEqual(['m5']);
    expect(keys({ spec: { domain: 'sub.example.com' } }).keys).toEqual(['m6']);
    expect(keys({ spec: { domain: 'ample.com' } }).count).toBe(0);
    expect(keys({ spec: { domain: '%' } }).count).toBe(0);
    expect(keys({ spec: { domain: '_xample.com' } }).count).toBe(0);
  });

  it('pages walk every id once, in order', () => {
    const all = keys({ spec: { query: '' } }, 2);
    expect(all.keys).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(keys({ spec: { domain: 'example.com' }, order: 'newest' }, 1).keys).toEqual(['m6', 'm4', 'm3', 'm2', 'm1']);
  });

  it("a user's scope is part of the SQL: only mail they take part in, and no finding it through Bcc", () => {
    const asCarol = { userId: carol };
    const asBob = { userId: bob };
    expect(keys({ spec: { query: '' }, scope: asCarol })).toEqual({ count: 1, keys: ['m1'] });
    expect(keys({ spec: { query: 'pineapple' }, scope: asBob }).keys).toEqual(['m1', 'm3']);
    expect(keys({ spec: { mailbox: ['dave@example.com'] }, scope: asCarol }).count).toBe(0);
    expect(keys({ spec: { mailbox: ['alice@example.com'] }, scope: asCarol }).keys).toEqual(['m1']);
    expect(keys({ spec: { domain: 'example.com' }, scope: asBob }).keys).toEqual(['m1', 'm3', 'm4']);
    expect(keys({ spec: { query: 'carol' }, scope: asBob }).count).toBe(0);
    expect(keys({ spec: { query: 'bcc:carol@example.com' }, scope: asBob }).count).toBe(0);
    expect(keys({ spec: { query: 'bcc:carol@example.com' } }).keys).toEqual(['m1']);
    expect(keys({ spec: { query: '' }, scope: { userId: -1 } }).count).toBe(0);
  });

  it('refuses what it cannot mean, with a reason', () => {
    const code = (req: SelectionRequest) => {
      try {
        selectMessages(db, req);
        return 'accepted';
      } catch (err) {
        return err instanceof SelectionError ? `${err.code}: ${err.message}` : String(err);
      }
    };
    expect(code({ spec: { query: '(unclosed' } })).toMatch(/^bad_query: /);
    expect(code({ spec: { query: '' }, after: '2024-02-30' })).toMatch(/^bad_selection: after: "2024-02-30" is not a date/);
    expect(code({ spec: { query: '' }, after: 'yesterday' })).toMatch(/^bad_selection: after expects a date/);
    expect(code({ spec: { query: '' }, after: '2024-03-05', before: '2024-03-05' })).toMatch(/after must be earlier than before/);
    expect(code({ spec: { mailbox: ['not an address'] } })).toMatch(/is not an address/);
    expect(code({ spec: { mailbox: [' ', ''] } })).toMatch(/at least one address/);
    expect(code({ spec: { mailbox: Array.from({ length: 101 }, (_, i) => `u${i}@example.com`) } })).toMatch(/at most 100/);
    expect(code({ spec: { domain: 'a b' } })).toMatch(/is not a domain/);
  });
});
