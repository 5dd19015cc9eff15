/**
 * Rules, explain, holds and dry runs on one running archive, through the API, with --as-of time
 * travel. Every message arrives today; Date headers and as_of dates move it in time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Explanation, HoldView, PurgeReport } from '../../src/retention/service.js';
import type { TestArchive } from '../helpers/archive.js';
import { call, deliver, idsByMessageId, ledgerRecords, mail, startRetentionArchive } from './fixture.js';

let archive: TestArchive;
let ids: Record<string, number>;
const rules = { news: '', legal: '', old: '', old2: '', invoice: '' };
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const now = Date.now();
const DAY = 86_400_000;

async function addRule(body: Record<string, unknown>): Promise<string> {
  const r = await call<{ rule: { id: string } }>(archive, { method: 'POST', url: '/api/retention/rules', role: 'admin', body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.rule.id;
}
const explain = async (name: string, asOf?: string) =>
  (await call<Explanation>(archive, { url: `/api/retention/explain/${ids[name]}${asOf ? `?as_of=${asOf}` : ''}`, role: 'admin' })).body;
const dryRun = async (asOf?: string) => {
  const r = await call<PurgeReport>(archive, { method: 'POST', url: '/api/retention/run', role: 'admin', body: { dry_run: true, ...(asOf ? { as_of: asOf } : {}) } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};
const perRule = (r: PurgeReport) => Object.fromEntries(r.by_rule.map((t) => [t.rule, t.messages]));

beforeAll(async () => {
  archive = await startRetentionArchive();
  const bob = 'bob@example.com';
  await deliver(archive, 'alice@example.com', [bob], mail({ from: 'alice@example.com', to: [bob], subject: 'plain note', id: 'plain@x' }));
  await deliver(archive, 'news@letters.example', [bob], mail({ from: 'news@letters.example', to: [bob], subject: 'weekly news', id: 'news@x' }));
  await deliver(archive, 'carol@legal.example', ['news@letters.example'], mail({ from: 'carol@legal.example', to: ['news@letters.example'], subject: 'unsubscribe', id: 'legal@x' }));
  await deliver(archive, 'dave@old.example', [bob], mail({ from: 'dave@old.example', to: [bob], subject: 'ancient', date: 'Thu, 01 Jan 2015 12:00:00 +0000', id: 'old@x' }));
  await deliver(archive, 'erin@old2.example', [bob], mail({ from: 'erin@old2.example', to: [bob], subject: 'ancient too', date: 'Thu, 01 Jan 2015 12:00:00 +0000', id: 'old2@x' }));
  await deliver(archive, 'alice@example.com', ['ap@vendor.example'], mail({ from: 'alice@example.com', to: ['ap@vendor.example'], subject: 'invoice 42', id: 'invoice@x' }));
  await archive.indexer.idle();
  ids = await idsByMessageId(archive);
  rules.news = await addRule({ name: 'newsletters', participants: ['letters.example'], period: '30d' });
  rules.legal = await addRule({ name: 'legal counsel', participants: ['@legal.example'], period: 'forever' });
  rules.old = await addRule({ name: 'old by Date', participants: ['old.example'], period: '1y', from: 'date' });
  rules.old2 = await addRule({ name: 'old by arrival', participants: ['old2.example'], period: '1y' });
  rules.invoice = await addRule({ name: 'invoices', query: 'subject:invoice', period: '10y' });
  await addRule({ default: true, period: '7y' });
}, 60_000);
afterAll(async () => {
  await archive?.close();
});

describe('retention rules', () => {
  it('lists the rules, the default first, and ledgers and audits every change', async () => {
    const r = await call<{ rules: Array<{ id: string; period: string; from: string }> }>(archive, { url: '/api/retention/rules', role: 'auditor' });
    expect(r.body.rules.map((x) => x.id)).toEqual(['default', rules.news, rules.legal, rules.old, rules.old2, rules.invoice]);
    expect(r.body.rules[0]).toMatchObject({ period: '7y', from: 'arrival' });
    const ledgered = ledgerRecords(archive.config.dataDir).filter((x) => x.type === 'retention-rule');
    expect(ledgered).toHaveLength(6);
    expect(ledgered[2]).toMatchObject({ action: 'add', actor: 'test-admin', rule: { id: rules.old, from: 'date', period: { count: 1, unit: 'years' }, match: { participants: ['old.example'] } } });
    const audit = await call<{ items: Array<{ target: string; details: Record<string, unknown> }> }>(archive, { url: '/api/audit?action=retention.change', role: 'auditor' });
    expect(audit.body.items).toHaveLength(6);
    expect(audit.body.items.map((i) => i.target)).toContain(rules.invoice);

    // A removed rule is ledgered with the whole rule, and is gone.
    const extra = await addRule({ participants: ['tmp.example'], period: '2d' });
    const removed = await call(archive, { method: 'DELETE', url: `/api/retention/rules/${extra}`, role: 'admin' });
    expect(removed.status).toBe(200);
    expect(ledgerRecords(archive.config.dataDir).at(-1)).toMatchObject({ type: 'retention-rule', action: 'remove', rule: { id: extra, match: { participants: ['tmp.example'] } } });
    expect((await call(archive, { method: 'DELETE', url: `/api/retention/rules/${extra}`, role: 'admin' })).status).toBe(404);
  });

  it('refuses malformed rules with a clear 400', async () => {
    const bad = [
      { participants: ['x.example'], period: 'soon' },
      { period: '1y' },
      { participants: ['not an address'], period: '1y' },
      { query: 'subject:(', period: '1y' },
      { default: true, participants: ['x.example'], period: '1y' },
    ];
    for (const body of bad) {
      const r = await call<{ error: { code: string } }>(archive, { method: 'POST', url: '/api/retention/rules', role: 'admin', body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('bad_rule');
    }
  });

  it('explain: no rule → the default; several rules → the longest wins', async () => {
    const plain = await explain('plain');
    expect(plain).toMatchObject({ status: 'kept', default_applies: true, rules: [{ id: 'default', period: '7y', governing: true }] });
    expect(Date.parse(plain.expires!) - Date.parse(plain.message!.arrived)).toBeGreaterThan(7 * 365 * DAY);

    const legal = await explain('legal');
    expect(legal.default_applies).toBe(false);
    expect(legal.rules.map((r) => [r.id, r.governing])).toEqual([[rules.news, false], [rules.legal, true]]);
    expect(legal.expires).toBeNull();

    const invoice = await explain('invoice');
    expect(invoice.rules).toEqual([expect.objectContaining({ id: rules.invoice, period: '10y', governing: true })]);
  });

  it('counts from the Date header when the rule says so (a forged old Date shortens retention)', async () => {
    const old = await explain('old');
    expect(old.status).toBe('expired');
    expect(old.expires).toBe('2016-01-01T12:00:00.000Z');
    const old2 = await explain('old2');
    expect(old2.status).toBe('kept');
    expect(Date.parse(old2.expires!)).toBeGreaterThan(now + 360 * DAY);
    // Time travel: a year on, the arrival-based one has expired too.
    expect((await explain('old2', day(now + 367 * DAY))).status).toBe('expired');
  });

  it('dry runs report per rule what would go, as of any date', async () => {
    const today = await dryRun();
    expect(today).toMatchObject({ dry_run: true, run: null, messages: 1 });
    expect(perRule(today)).toEqual({ [rules.old]: 1 });
    expect(today.bytes).toBeGreaterThan(0);
    expect(perRule(await dryRun(day(now + 40 * DAY)))).toEqual({ [rules.old]: 1, [rules.news]: 1 });
    const later = await dryRun(day(now + (7 * 365 + 30) * DAY));
    // legal is kept forever and the invoice for ten years; everything else has expired.
    expect(perRule(later)).toEqual({ default: 1, [rules.news]: 1, [rules.old]: 1, [rules.old2]: 1 });
    expect(later.held).toEqual({ messages: 0, items: [] });
    const audit = await call<{ items: Array<{ details: Record<string, unknown> }> }>(archive, { url: '/api/audit?action=retention.run', role: 'auditor' });
    expect(audit.body.items.length).toBeGreaterThanOrEqual(3);
    expect(audit.body.items[0]!.details).toMatchObject({ dry_run: true });
    // Nothing was removed by looking.
    expect((await call<{ total: number }>(archive, { url: '/api/search?q=' })).body.total).toBe(6);
  });
});

describe('legal holds', () => {
  it('a hold beats retention, covers mail that arrives after it, and its release is recorded', async () => {
    const placed = await call<{ hold: HoldView }>(archive, {
      method: 'POST', url: '/api/holds', role: 'auditor',
      body: { case: 'Smith v. Example', reason: 'litigation notice of 2024-03-01', participants: ['bob@example.com'] },
    });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    const hold = placed.body.hold;
    expect(hold).toMatchObject({ case: 'Smith v. Example', placed_by: 'test-auditor', messages: 4, released: null });

    const held = await dryRun();
    expect(held.messages).toBe(0);
    expect(held.held.messages).toBe(1);
    expect(held.held.items[0]).toMatchObject({ id: ids.old, message_id: 'old@x', rule: rules.old, holds: [hold.id] });
    expect(await explain('old')).toMatchObject({ status: 'held', holds: [{ id: hold.id, case: 'Smith v. Example' }] });

    // New mail for bob, expired on arrival by its Date header: held from the moment it arrives.
    await deliver(archive, 'frank@old.example', ['bob@example.com'], mail({ from: 'frank@old.example', to: ['bob@example.com'], subject: 'late', date: 'Thu, 01 Jan 2015 12:00:00 +0000', id: 'late@x' }));
    await archive.indexer.idle();
    const list = await call<{ holds: HoldView[] }>(archive, { url: '/api/holds', role: 'auditor' });
    expect(list.body.holds.find((h) => h.id === hold.id)!.messages).toBe(5);
    expect((await dryRun()).held.messages).toBe(2);

    // Release: who, when, why; then retention applies again.
    expect((await call(archive, { method: 'POST', url: `/api/holds/${hold.id}/release`, role: 'auditor', body: {} })).status).toBe(400);
    const released = await call<{ hold: HoldView }>(archive, { method: 'POST', url: `/api/holds/${hold.id}/release`, role: 'auditor', body: { reason: 'case settled' } });
    expect(released.status).toBe(200);
    expect(released.body.hold.released).toMatchObject({ by: 'test-auditor', reason: 'case settled' });
    expect((await call(archive, { method: 'POST', url: `/api/holds/${hold.id}/release`, role: 'auditor', body: { reason: 'again' } })).status).toBe(409);
    const after = await dryRun();
    expect(after.held.messages).toBe(0);
    expect(perRule(after)).toEqual({ [rules.old]: 2 });

    const all = await call<{ holds: HoldView[] }>(archive, { url: '/api/holds', role: 'auditor' });
    expect(all.body.holds[0]).toMatchObject({ id: hold.id, messages: null });
    expect((await call<{ holds: HoldView[] }>(archive, { url: '/api/holds?active=true', role: 'auditor' })).body.holds).toEqual([]);
    const ledgered = ledgerRecords(archive.config.dataDir).filter((r) => r.type === 'hold');
    expect(ledgered.map((r) => r.type === 'hold' && [r.action, r.actor, r.reason])).toEqual([
      ['place', 'test-auditor', 'litigation notice of 2024-03-01'], ['release', 'test-auditor', 'case settled'],
    ]);
    const audit = await call<{ items: Array<{ details: Record<string, unknown> }> }>(archive, { url: '/api/audit?action=hold.change', role: 'auditor' });
    expect(audit.body.items.map((i) => i.details.change)).toEqual(['release', 'place']);
  });

  it('selects by domain, date range and query', async () => {
    const place = async (body: Record<string, unknown>) => {
      const r = await call<{ hold: HoldView }>(archive, { method: 'POST', url: '/api/holds', role: 'auditor', body: { case: 'c', reason: 'r', ...body } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.hold;
    };
    const release = (h: HoldView) => call(archive, { method: 'POST', url: `/api/holds/${h.id}/release`, role: 'auditor', body: { reason: 'test done' } });
    const byDomainAndDate = await place({ participants: ['old.example'], since: '2014-12-01', until: '2015-02-01' });
    expect(byDomainAndDate.messages).toBe(2);
    const outOfRange = await place({ participants: ['old.example'], since: '2016-01-01' });
    expect(outOfRange.messages).toBe(0);
    const byQuery = await place({ query: 'subject:invoice' });
    expect(byQuery.messages).toBe(1);
    expect((await dryRun()).held.messages).toBe(2);
    for (const h of [byDomainAndDate, outOfRange, byQuery]) expect((await release(h)).status).toBe(200);
    const bad = await call<{ error: { code: string } }>(archive, { method: 'POST', url: '/api/holds', role: 'auditor', body: { case: 'c', reason: 'r', since: '2020-01-01', until: '2019-01-01' } });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'bad_hold']);
  });
});

describe('who may do what', () => {
  it('rules and purges are the admin\'s, holds the auditor\'s; a user has none of it', async () => {
    const cases: Array<[string, string, 'auditor' | 'admin' | 'user', number, unknown?]> = [
      ['POST', '/api/retention/rules', 'auditor', 403, { participants: ['a.example'], period: '1y' }],
      ['POST', '/api/retention/rules', 'user', 403, { participants: ['a.example'], period: '1y' }],
      ['DELETE', `/api/retention/rules/${rules.news}`, 'auditor', 403],
      ['GET', '/api/retention/rules', 'user', 403],
      ['GET', `/api/retention/explain/${ids.plain}`, 'auditor', 200],
      ['GET', `/api/retention/explain/${ids.plain}`, 'user', 403],
      ['POST', '/api/retention/run', 'auditor', 403, { dry_run: true }],
      ['GET', '/api/retention/runs', 'auditor', 200],
      ['GET', '/api/holds', 'admin', 403],
      ['POST', '/api/holds', 'admin', 403, { case: 'c', reason: 'r' }],
      ['POST', '/api/holds/h-0000000000/release', 'admin', 403, { reason: 'r' }],
      ['GET', '/api/integrity?sample=2', 'user', 403],
      ['GET', '/api/integrity?sample=2', 'admin', 200],
    ];
    for (const [method, url, role, status, body] of cases) {
      expect((await call(archive, { method, url, role, ...(body !== undefined ? { body } : {}) })).status, `${method} ${url} as ${role}`).toBe(status);
    }
  });

  it('a real purge cannot look ahead of today', async () => {
    const r = await call<{ error: { code: string } }>(archive, { method: 'POST', url: '/api/retention/run', role: 'admin', body: { dry_run: false, as_of: day(now + 3 * DAY) } });
    expect([r.status, r.body.error.code]).toEqual([400, 'bad_as_of']);
    expect((await call(archive, { method: 'POST', url: '/api/retention/run', role: 'admin', body: {} })).status).toBe(400);
  });
});
